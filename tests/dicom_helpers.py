"""Write small DICOM files for tests (identifying fields filled with known values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IDENTIFYING = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-4711",
    "PatientBirthDate": "20100315",
    "AccessionNumber": "ACC-0815",
}


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    slope: float = 1.0,
    intercept: float = 0.0,
    window: tuple | None = None,
    syntax: str | None = None,
    **tags,
) -> Path:
    """Save a 12-bit single-frame DX image; ``syntax`` compresses (RLE, JPEG 2000, ...)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for k, v in {
        **IDENTIFYING,
        "StudyInstanceUID": generate_uid(),
        "StudyDate": "20220315",
        "SOPInstanceUID": meta.MediaStorageSOPInstanceUID,
        "Modality": "DX",
        "PatientSex": "F",
        **tags,
    }.items():
        if v is not None:
            setattr(ds, k, v)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    if syntax:
        ds.compress(syntax)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_undecodable(path: Path, pixels_shape=(64, 48)) -> Path:
    """A JPEG-LS file: no decoder for it is installed, so it must be rejected cleanly."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    write_dicom(path, np.zeros(pixels_shape, np.uint16))
    import pydicom

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7 not really jpeg-ls \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path
