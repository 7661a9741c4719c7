// Review keys: y / n / s press the matching button of the answer form.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || /INPUT|SELECT|TEXTAREA/.test(event.target.tagName)) return;
  const button = document.querySelector(`#answer button[data-key="${event.key.toLowerCase()}"]`);
  if (button && !button.disabled) { event.preventDefault(); button.click(); }
});
