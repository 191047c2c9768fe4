"""Networks rebuilt from dlib's ``.dat`` weights for ONNX Runtime and PyTorch.

* :mod:`openlfr.face.nets.resnet`: the face-recognition ResNet (and any dlib network parsed by
  :mod:`openlfr.face.dlib_dnn` from the layers it supports) as an ONNX graph or a torch module;
* :mod:`openlfr.face.nets.mmod`: the MMOD CNN face detector.
"""
