//! `put`: one PutObject for a body of at most one part, a multipart upload beyond.

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures_util::StreamExt;
use reqwest::Method;

use super::{PART_SIZE, S3ObjectStore, header, http_date, unavailable};
use crate::adapters::aws::http::{Call, CallError, xml_field};
use crate::ports::object_store::{ByteStream, ObjectMeta, ObjectStore, ObjectStoreError, PutOptions};

/// Reads from `body` until `PART_SIZE` bytes are in hand or the body ends: (bytes, ended).
async fn next_part(body: &mut ByteStream, carry: &mut BytesMut) -> std::io::Result<(Bytes, bool)> {
    while carry.len() < PART_SIZE {
        match body.next().await {
            Some(chunk) => carry.extend_from_slice(&chunk?),
            None => return Ok((carry.split().freeze(), true)),
        }
    }
    Ok((carry.split_to(PART_SIZE).freeze(), false))
}

fn body_failed(key: &str, e: std::io::Error) -> ObjectStoreError {
    ObjectStoreError::Unavailable { operation: "put", key: key.to_owned(), transient: false, source: Box::new(e) }
}

fn put_headers(options: &PutOptions) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if let Some(content_type) = &options.content_type {
        headers.push(("content-type".to_owned(), content_type.clone()));
    }
    if options.if_absent {
        headers.push(("if-none-match".to_owned(), "*".to_owned()));
    }
    headers
}

fn taken_or(key: &str, e: CallError) -> ObjectStoreError {
    // 412: the key exists. 409 ConditionalRequestConflict: a concurrent conditional write won.
    if matches!(e.status(), Some(412)) || e.code() == "ConditionalRequestConflict" {
        ObjectStoreError::AlreadyExists { key: key.to_owned() }
    } else {
        unavailable("put", key, e)
    }
}

impl S3ObjectStore {
    pub(super) async fn upload(
        &self,
        key: &str,
        mut body: ByteStream,
        options: &PutOptions,
    ) -> Result<ObjectMeta, ObjectStoreError> {
        let mut carry = BytesMut::new();
        let (first, ended) = next_part(&mut body, &mut carry).await.map_err(|e| body_failed(key, e))?;
        if ended {
            let size = first.len() as u64;
            let call = Call { headers: put_headers(options), body: first, ..Call::default() };
            let response = self.call(Method::PUT, key, call).await.map_err(|e| taken_or(key, e))?;
            let last_modified = http_date(header(&response, "date"));
            return Ok(ObjectMeta { key: key.to_owned(), size, last_modified, immutable_until: None });
        }
        if options.if_absent {
            // Refuse before uploading parts; the completion is conditional too, so a writer
            // racing this check still loses there.
            match self.head(key).await {
                Ok(_) => return Err(ObjectStoreError::AlreadyExists { key: key.to_owned() }),
                Err(ObjectStoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let upload_id = self.create_multipart(key, options).await?;
        let result = self.upload_parts(key, &upload_id, first, body, carry, options).await;
        if result.is_err() {
            let query = vec![("uploadId".to_owned(), upload_id.clone())];
            if let Err(e) = self.call(Method::DELETE, key, Call { query, ..Call::default() }).await {
                // The bucket's lifecycle rule for incomplete uploads (see docs) cleans up after.
                tracing::warn!(s3.upload_id = %upload_id, "aborting the failed multipart upload: {e}");
            }
        }
        result
    }

    async fn create_multipart(&self, key: &str, options: &PutOptions) -> Result<String, ObjectStoreError> {
        let headers = options.content_type.iter().map(|t| ("content-type".to_owned(), t.clone())).collect();
        let call = Call { query: vec![("uploads".to_owned(), String::new())], headers, ..Call::default() };
        let response = self.call(Method::POST, key, call).await.map_err(|e| unavailable("put", key, e))?;
        let xml = response.text().await.map_err(|e| unavailable("put", key, e.into()))?;
        xml_field(&xml, "UploadId").ok_or_else(|| {
            unavailable("put", key, CallError::Service { status: 200, code: "NoUploadId".into(), message: xml })
        })
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        mut body: ByteStream,
        mut carry: BytesMut,
        options: &PutOptions,
    ) -> Result<ObjectMeta, ObjectStoreError> {
        let mut etags = Vec::new();
        let mut size = 0u64;
        let mut next = Some(first);
        let mut ended = false;
        while let Some(part) = next.take() {
            size += part.len() as u64;
            let query = vec![
                ("partNumber".to_owned(), (etags.len() + 1).to_string()),
                ("uploadId".to_owned(), upload_id.to_owned()),
            ];
            let call = Call { query, body: part, ..Call::default() };
            let response = self.call(Method::PUT, key, call).await.map_err(|e| unavailable("put", key, e))?;
            etags.push(header(&response, "etag").unwrap_or_default().to_owned());
            if !ended {
                let (following, body_ended) =
                    next_part(&mut body, &mut carry).await.map_err(|e| body_failed(key, e))?;
                ended = body_ended;
                next = Some(following).filter(|p| !p.is_empty());
            }
        }
        let parts: String = etags
            .iter()
            .enumerate()
            .map(|(i, etag)| format!("<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>", i + 1))
            .collect();
        let xml = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
        let mut headers = vec![("content-type".to_owned(), "application/xml".to_owned())];
        if options.if_absent {
            headers.push(("if-none-match".to_owned(), "*".to_owned()));
        }
        let call = Call {
            query: vec![("uploadId".to_owned(), upload_id.to_owned())],
            headers,
            body: Bytes::from(xml),
            ..Call::default()
        };
        let response = self.call(Method::POST, key, call).await.map_err(|e| taken_or(key, e))?;
        let answer = response.text().await.map_err(|e| unavailable("put", key, e.into()))?;
        // CompleteMultipartUpload may fail after its 200 status line: the error is in the body.
        if answer.contains("<Error>") {
            return Err(taken_or(key, crate::adapters::aws::http::service_error(200, &answer)));
        }
        Ok(ObjectMeta { key: key.to_owned(), size, last_modified: Utc::now(), immutable_until: None })
    }
}
