//! Entity group transactions (`$batch`): one `multipart/mixed` request holding one changeset,
//! whose operations the service applies all or none.
//!
//! The answer is `multipart/mixed` too: one embedded HTTP response per operation when the
//! changeset succeeded, or a single one naming the failing operation (`"3:The specified entity
//! already exists..."`) when it was rolled back.

use serde_json::Value;

use super::entity;
use super::url::{entity_path, table_path};
use crate::ports::state_store::{BatchOp, Entity};

/// The request body of a changeset of `ops` on `partition_key`, and its content type.
///
/// `base` is the account's table endpoint (`https://acct.table.core.windows.net` or
/// `http://127.0.0.1:10002/devstoreaccount1`): inner requests carry absolute URLs.
pub(super) fn request(base: &str, table: &str, partition_key: &str, ops: &[BatchOp]) -> (String, String) {
    let id = uuid::Uuid::new_v4().simple();
    let (batch, changeset) = (format!("batch_{id}"), format!("changeset_{id}"));
    let mut body = format!("--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n");
    for (index, op) in ops.iter().enumerate() {
        body.push_str(&format!(
            "--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        ));
        let (method, path, if_match, entity): (&str, String, Option<&str>, Option<&Entity>) = match op {
            BatchOp::Insert(e) => ("POST", table_path(table), None, Some(e)),
            BatchOp::Upsert(e) => ("PUT", entity_path(table, partition_key, &e.row_key), None, Some(e)),
            BatchOp::Update(e) => {
                let etag = e.etag.as_ref().map_or("*", |t| t.0.as_str());
                ("PUT", entity_path(table, partition_key, &e.row_key), Some(etag), Some(e))
            }
            BatchOp::Delete { row_key, if_match } => {
                let etag = if_match.as_ref().map_or("*", |t| t.0.as_str());
                ("DELETE", entity_path(table, partition_key, row_key), Some(etag), None)
            }
        };
        body.push_str(&format!("{method} {base}{path} HTTP/1.1\r\n"));
        body.push_str(&format!("Content-ID: {}\r\n", index + 1));
        body.push_str("Accept: application/json;odata=minimalmetadata\r\nDataServiceVersion: 3.0\r\n");
        if let Some(etag) = if_match {
            body.push_str(&format!("If-Match: {etag}\r\n"));
        }
        match entity {
            Some(e) => {
                let json = Value::Object(entity::encode(e)).to_string();
                body.push_str("Prefer: return-no-content\r\nContent-Type: application/json\r\n");
                body.push_str(&format!("Content-Length: {}\r\n\r\n{json}\r\n", json.len()));
            }
            None => body.push_str("\r\n"),
        }
    }
    body.push_str(&format!("--{changeset}--\r\n\r\n--{batch}--\r\n"));
    (body, format!("multipart/mixed; boundary={batch}"))
}

/// One embedded response of a batch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    /// Its HTTP status.
    pub status: u16,
    /// Its `ETag` header.
    pub etag: Option<String>,
    /// Its `Content-ID` header (the operation's 1-based index, where the service echoes it).
    pub content_id: Option<usize>,
    /// Its body (an error's JSON, if any).
    pub body: String,
}

/// The embedded responses of a batch answer, in order.
pub(super) fn parse(answer: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lines = answer.lines().map(|l| l.trim_end_matches('\r')).peekable();
    while let Some(line) = lines.next() {
        let Some(status) = line.strip_prefix("HTTP/1.1 ").and_then(|s| s.split(' ').next()?.parse().ok()) else {
            continue;
        };
        let mut part = Part { status, etag: None, content_id: None, body: String::new() };
        for header in lines.by_ref() {
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("etag") {
                    part.etag = Some(value.to_owned());
                } else if name.eq_ignore_ascii_case("content-id") {
                    part.content_id = value.parse().ok();
                }
            }
        }
        while let Some(line) = lines.peek() {
            if line.starts_with("--") || line.starts_with("HTTP/1.1 ") {
                break;
            }
            part.body.push_str(line);
            lines.next();
        }
        parts.push(part);
    }
    parts
}

/// The index of the failing operation, from the error message's `"N:"` prefix or the part's
/// `Content-ID`.
pub(super) fn failed_index(part: &Part) -> Option<usize> {
    let message = serde_json::from_str::<Value>(&part.body)
        .ok()
        .and_then(|v| v.pointer("/odata.error/message/value").and_then(Value::as_str).map(str::to_owned));
    message
        .and_then(|m| m.split_once(':').and_then(|(n, _)| n.trim().parse().ok()))
        .or_else(|| part.content_id.and_then(|id| id.checked_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::state_store::ETag;

    #[test]
    fn the_request_holds_one_changeset_with_each_operation() {
        let ops = [
            BatchOp::Insert(Entity::new("p", "a").with("v", 1)),
            BatchOp::Update(Entity { etag: Some(ETag("W/\"x\"".into())), ..Entity::new("p", "b") }),
            BatchOp::Delete { row_key: "c".into(), if_match: None },
        ];
        let (body, content_type) = request("http://h/acct", "t1", "p", &ops);
        let boundary = content_type.strip_prefix("multipart/mixed; boundary=").expect("boundary");
        assert!(body.starts_with(&format!("--{boundary}\r\n")));
        assert!(body.ends_with(&format!("--{boundary}--\r\n")));
        assert!(body.contains("POST http://h/acct/t1 HTTP/1.1\r\n"));
        assert!(body.contains("PUT http://h/acct/t1(PartitionKey='p',RowKey='b') HTTP/1.1\r\n"));
        assert!(body.contains("If-Match: W/\"x\"\r\n"));
        assert!(body.contains("DELETE http://h/acct/t1(PartitionKey='p',RowKey='c') HTTP/1.1\r\n"));
        assert!(body.contains("If-Match: *\r\n"));
        assert_eq!(body.matches("Content-Type: application/http").count(), 3);
    }

    #[test]
    fn answers_parse_into_parts() {
        let ok = "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n\
                  --changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
                  HTTP/1.1 204 No Content\r\nContent-ID: 1\r\nETag: W/\"a\"\r\n\r\n\r\n\
                  --changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
                  HTTP/1.1 204 No Content\r\nETag: W/\"b\"\r\n\r\n\r\n\
                  --changesetresponse_2--\r\n--batchresponse_1--\r\n";
        let parts = parse(ok);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].etag.as_deref(), Some("W/\"a\""));
        assert_eq!(parts[1].status, 204);
        let failed = "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\
                      Content-Type: application/http\r\n\r\nHTTP/1.1 409 Conflict\r\n\
                      Content-Type: application/json;odata=minimalmetadata\r\n\r\n\
                      {\"odata.error\":{\"code\":\"EntityAlreadyExists\",\"message\":{\"lang\":\"en-US\",\"value\":\"2:The specified entity already exists.\"}}}\r\n\
                      --c--\r\n--batchresponse_1--\r\n";
        let parts = parse(failed);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].status, 409);
        assert_eq!(failed_index(&parts[0]), Some(2));
    }
}
