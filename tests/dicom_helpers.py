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
    """An MPEG-2 encoded film: no decoder for it is installed, so it must be rejected cleanly."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML

    write_dicom(path, np.zeros(pixels_shape, np.uint16))
    import pydicom

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3 not really mpeg-2"])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def write_jpeg_dicom(path: Path, pixels: np.ndarray, **tags) -> bytes:
    """An 8-bit DX film in JPEG baseline (lossy, as many PACS export); returns the JPEG."""
    import io

    import pydicom
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()
    write_dicom(path, np.zeros(pixels.shape, np.uint16), **tags)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return jpeg


def to_jpeg_lossless(source: Path, path: Path) -> Path:
    """``source`` re-encoded as JPEG lossless (process 14), as many PACS store films (GDCM)."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(source))
    if not reader.Read():
        raise OSError(f"GDCM cannot read {source}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise OSError("GDCM could not encode JPEG lossless")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise OSError(f"GDCM cannot write {path}")
    return path
