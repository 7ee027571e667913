//! `put`: the body cut into blocks, staged with bounded parallelism, committed at once.

use std::num::NonZero;

use azure_core::http::{Body, Etag, NoFormat, RequestContent};
use azure_storage_blob::models::{
    BlockBlobClientCommitBlockListOptions, BlockBlobClientCommitBlockListResultHeaders, BlockBlobClientUploadOptions,
    BlockLookupList,
};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt, TryStreamExt};

use super::{BLOCK_SIZE, BlobObjectStore, STAGING_IN_FLIGHT, container_missing, to_chrono, unavailable};
use crate::adapters::azure::errors;
use crate::ports::object_store::{ByteStream, ObjectMeta, ObjectStoreError, PutOptions};

impl BlobObjectStore {
    /// Writes `body` at `key` (already validated).
    pub(super) async fn upload(
        &self,
        key: &str,
        body: ByteStream,
        options: &PutOptions,
    ) -> Result<ObjectMeta, ObjectStoreError> {
        // `next_block` may look past the end of a short body: a fused stream answers `None`
        // again instead of panicking (as `stream::unfold` bodies do when polled after the end).
        let mut body: ByteStream = Box::pin(body.fuse());
        let mut pending = BytesMut::new();
        let first = next_block(&mut body, &mut pending).await.map_err(|e| body_failed(key, e))?.unwrap_or_default();
        match next_block(&mut body, &mut pending).await.map_err(|e| body_failed(key, e))? {
            None => self.put_small(key, first, options).await,
            Some(second) => self.put_blocks(key, [first, second], &mut body, &mut pending, options).await,
        }
    }

    pub(super) async fn create_container(&self, key: &str) -> Result<(), ObjectStoreError> {
        match self.container.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if errors::status(&e) == Some(409) => Ok(()), // created meanwhile
            Err(e) => Err(unavailable("create container for put", key, e)),
        }
    }

    /// Put Blob of a body that fits one block.
    async fn put_small(&self, key: &str, body: Bytes, options: &PutOptions) -> Result<ObjectMeta, ObjectStoreError> {
        let size = body.len() as u64;
        let upload = || async {
            let opts = BlockBlobClientUploadOptions {
                if_none_match: options.if_absent.then(|| Etag::from("*")),
                blob_content_type: options.content_type.clone(),
                partition_size: NonZero::new(BLOCK_SIZE as u64),
                ..BlockBlobClientUploadOptions::default()
            };
            self.block_blob(key).upload(content(body.clone()), Some(opts)).await
        };
        let result = match upload().await {
            Err(e) if container_missing(&e) => {
                self.create_container(key).await?;
                upload().await
            }
            other => other,
        };
        let done = result.map_err(|e| put_error(key, e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
            last_modified: to_chrono(done.last_modified),
            immutable_until: None,
        })
    }

    /// Stages every block of the body (`first` and `second` already read) and commits them.
    async fn put_blocks(
        &self,
        key: &str,
        blocks: [Bytes; 2],
        rest: &mut ByteStream,
        pending: &mut BytesMut,
        options: &PutOptions,
    ) -> Result<ObjectMeta, ObjectStoreError> {
        let client = self.block_blob(key);
        let stage = |id: Vec<u8>, block: Bytes| {
            let client = &client;
            async move {
                let len = block.len() as u64;
                client.stage_block(&id, len, content(block), None).await.map(|_| ())
            }
        };
        let [first, second] = blocks;
        // The first block alone: a missing container shows here, before anything else is sent.
        let first_id = uuid::Uuid::new_v4().as_bytes().to_vec();
        let mut size = first.len() as u64;
        match stage(first_id.clone(), first.clone()).await {
            Err(e) if container_missing(&e) => {
                self.create_container(key).await?;
                stage(first_id.clone(), first).await.map_err(|e| unavailable("put", key, e))?;
            }
            other => other.map_err(|e| unavailable("put", key, e))?,
        }
        let mut ids = vec![first_id];
        let mut in_flight = FuturesUnordered::new();
        let mut next = Some(second);
        while let Some(block) = next.take() {
            size += block.len() as u64;
            let id = uuid::Uuid::new_v4().as_bytes().to_vec();
            ids.push(id.clone());
            in_flight.push(stage(id, block));
            while in_flight.len() >= STAGING_IN_FLIGHT {
                in_flight.try_next().await.map_err(|e| unavailable("put", key, e))?;
            }
            next = next_block(rest, pending).await.map_err(|e| body_failed(key, e))?;
        }
        while in_flight.try_next().await.map_err(|e| unavailable("put", key, e))?.is_some() {}
        let list = BlockLookupList { latest: Some(ids), ..BlockLookupList::default() };
        let opts = BlockBlobClientCommitBlockListOptions {
            if_none_match: options.if_absent.then(|| Etag::from("*")),
            blob_content_type: options.content_type.clone(),
            ..Default::default()
        };
        let content = list.try_into().map_err(|e| unavailable("put", key, e))?;
        let response = client.commit_block_list(content, Some(opts)).await.map_err(|e| put_error(key, e))?;
        let last_modified = to_chrono(response.last_modified().ok().flatten());
        Ok(ObjectMeta { key: key.to_owned(), size, last_modified, immutable_until: None })
    }
}

/// A request body from bytes already in memory (no copy).
fn content(bytes: Bytes) -> RequestContent<Bytes, NoFormat> {
    Body::Bytes(bytes).into()
}

fn body_failed(key: &str, e: std::io::Error) -> ObjectStoreError {
    ObjectStoreError::Unavailable {
        operation: "read the body to put",
        key: key.to_owned(),
        transient: false,
        source: Box::new(e),
    }
}

/// A refused `If-None-Match: *` is `AlreadyExists`; anything else is `Unavailable`.
fn put_error(key: &str, e: azure_core::Error) -> ObjectStoreError {
    match (errors::status(&e), errors::code(&e)) {
        (Some(412), _) | (Some(409), Some("BlobAlreadyExists")) => {
            ObjectStoreError::AlreadyExists { key: key.to_owned() }
        }
        _ => unavailable("put", key, e),
    }
}

/// The next block of at most [`BLOCK_SIZE`] bytes, or `None` at the end of the body.
async fn next_block(body: &mut ByteStream, pending: &mut BytesMut) -> std::io::Result<Option<Bytes>> {
    while pending.len() < BLOCK_SIZE {
        match body.next().await {
            Some(chunk) => pending.extend_from_slice(&chunk?),
            None => break,
        }
    }
    if pending.is_empty() {
        return Ok(None);
    }
    let n = pending.len().min(BLOCK_SIZE);
    Ok(Some(pending.split_to(n).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_are_cut_at_block_size_whatever_the_chunks() {
        let chunks: Vec<std::io::Result<Bytes>> =
            (0..9).map(|_| Ok(Bytes::from(vec![7u8; BLOCK_SIZE / 2 + 1]))).collect();
        let mut body: ByteStream = Box::pin(futures_util::stream::iter(chunks));
        let mut pending = BytesMut::new();
        let mut sizes = Vec::new();
        while let Some(block) = next_block(&mut body, &mut pending).await.expect("read") {
            sizes.push(block.len());
        }
        let total = 9 * (BLOCK_SIZE / 2 + 1);
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert!(sizes[..sizes.len() - 1].iter().all(|s| *s == BLOCK_SIZE), "{sizes:?}");
    }
}
