"""The blob store the settings ask for: the rules of ``sync.blobs`` over the local blob directory
(``blob_store = local``, the default) or an S3-compatible bucket (``blob_store = s3``)."""

from __future__ import annotations

from sync.blobs import BlobBytes, BlobStore, LocalBytes, StorageError

from .settings import SettingError, Settings


def blob_bytes(settings: Settings) -> BlobBytes:
    """Where blob bytes live. For S3 the bucket is asked for once, so that a wrong name, endpoint
    or key stops the start with a message instead of failing the first photo."""
    kind = settings.blob_store.strip().lower()
    if kind == "local":
        return LocalBytes(settings.blobs)
    if kind != "s3":
        raise SettingError(f"blob_store: {settings.blob_store!r} is neither local nor s3")
    if not settings.s3_bucket:
        raise SettingError("s3_bucket: blob_store is s3, so name the bucket (GRIDBOOK_S3_BUCKET)")
    try:
        from sync.blobs_s3 import S3Bytes
    except ImportError:
        raise SettingError("blob_store is s3, which needs boto3: pip install 'gridbook[s3]'") from None
    s3 = S3Bytes(settings.s3_bucket, settings.s3_prefix, endpoint_url=settings.s3_endpoint_url,
                 region=settings.s3_region, access_key_id=settings.s3_access_key_id,
                 secret_access_key=settings.s3_secret_access_key)
    try:
        s3.check()
    except StorageError as e:
        raise SettingError(f"s3_bucket: cannot use bucket {settings.s3_bucket!r} at "
                           f"{settings.s3_endpoint_url or 'AWS S3'} ({e})") from None
    return s3


def blob_store(settings: Settings) -> BlobStore:
    return BlobStore(blob_bytes(settings), settings.max_blob_bytes, settings.max_chunk_bytes,
                     settings.max_pending_upload_bytes)
