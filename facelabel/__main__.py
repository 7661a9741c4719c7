from facelabel.cli import main

main()
