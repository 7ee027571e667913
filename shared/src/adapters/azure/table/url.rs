//! Table Storage addresses: entity paths with quoted keys, and `$filter` queries.

use crate::ports::state_store::Query;

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An OData string literal: quotes doubled (not yet URL-encoded).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `/{table}`: where inserts go.
pub(super) fn table_path(table: &str) -> String {
    format!("/{table}")
}

/// `/{table}(PartitionKey='…',RowKey='…')`, keys quoted and encoded.
pub(super) fn entity_path(table: &str, partition_key: &str, row_key: &str) -> String {
    let key = |k: &str| format!("'{}'", encode(&k.replace('\'', "''")));
    format!("/{table}(PartitionKey={},RowKey={})", key(partition_key), key(row_key))
}

/// The `$filter` of a range query, if it filters at all.
pub(super) fn filter(query: &Query) -> Option<String> {
    let mut clauses = Vec::new();
    if let Some(pk) = &query.partition_key {
        clauses.push(format!("PartitionKey eq {}", literal(pk)));
    }
    if let Some(from) = &query.row_key_from {
        clauses.push(format!("RowKey ge {}", literal(from)));
    }
    if let Some(to) = &query.row_key_to {
        clauses.push(format!("RowKey lt {}", literal(to)));
    }
    (!clauses.is_empty()).then(|| clauses.join(" and "))
}

/// The query string of one page: filter, page size and where the previous page stopped.
pub(super) fn query_string(query: &Query, top: usize, next: Option<&(String, String)>) -> String {
    let mut pairs = vec![format!("$top={top}")];
    if let Some(f) = filter(query) {
        pairs.push(format!("$filter={}", encode(&f)));
    }
    if let Some((pk, rk)) = next {
        pairs.push(format!("NextPartitionKey={}", encode(pk)));
        if !rk.is_empty() {
            pairs.push(format!("NextRowKey={}", encode(rk)));
        }
    }
    pairs.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_and_encoded() {
        assert_eq!(entity_path("t", "it's", "a b,ä"), "/t(PartitionKey='it%27%27s',RowKey='a%20b%2C%C3%A4')");
    }

    #[test]
    fn filters_combine_partition_and_row_range() {
        let q = Query { row_key_from: Some("2".into()), row_key_to: Some("3'".into()), ..Query::partition("a") };
        assert_eq!(filter(&q).as_deref(), Some("PartitionKey eq 'a' and RowKey ge '2' and RowKey lt '3'''"));
        assert_eq!(filter(&Query::all()), None);
        let qs = query_string(&Query::partition("a b"), 5, Some(&("1!x".into(), String::new())));
        assert_eq!(qs, "$top=5&$filter=PartitionKey%20eq%20%27a%20b%27&NextPartitionKey=1%21x");
    }
}
