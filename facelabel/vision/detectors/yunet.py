"""YuNet (libfacedetection's model through OpenCV's FaceDetectorYN): one photo per call,
about a tenth of MTCNN's time on CPUs (bench/wild.py). OpenCV's wheels run it on the CPU."""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from facelabel.vision.detectors import RawFace, model_file

FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
FLOOR = 0.5  # YuNet's own score cut: weaker candidates are not even counted as dropped
NMS_IOU = 0.3


class YuNet:
    name = "yunet"
    # research/fit_framing.py --detector yunet (2,000 CelebA aligned images)
    margins = (0.548, 0.591, 0.533, 0.299)
    # image-left eye, image-right eye, image-left mouth corner, image-right mouth corner
    template = np.float32([[69.3, 112.8], [108.7, 113.0], [72.1, 151.9], [105.3, 152.6]])

    def __init__(self):
        self._path = str(model_file(FILE, SHA256))
        self._local = threading.local()  # a FaceDetectorYN keeps its input size: one per thread

    def _detector(self, width: int, height: int):
        import cv2

        detector = getattr(self._local, "detector", None)
        if detector is None:
            # errors only: OpenCV 5 warns that its new engine ignores targets
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
            detector = cv2.FaceDetectorYN.create(self._path, "", (width, height), FLOOR, NMS_IOU, 5000)
            self._local.detector, self._local.size = detector, (width, height)
        elif self._local.size != (width, height):
            detector.setInputSize((width, height))
            self._local.size = (width, height)
        return detector

    def detect(self, images: Sequence[np.ndarray], *, min_size: int, batch: int) -> list[list[RawFace]]:
        found = []
        for rgb in images:
            height, width = rgb.shape[:2]
            _, rows = self._detector(width, height).detect(np.ascontiguousarray(rgb[:, :, ::-1]))
            faces = []
            for row in () if rows is None else rows:
                marks = row[4:14].reshape(5, 2)  # image-left eye, image-right eye, nose, mouth corners
                faces.append(RawFace(tuple(float(v) for v in row[:4]), float(row[14]), marks[[0, 1, 3, 4]]))
            found.append(faces)
        return found


BACKEND = YuNet
