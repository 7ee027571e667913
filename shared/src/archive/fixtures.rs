//! Test data shared by the archive module's unit tests.

use super::*;

/// `n` objects spread over namespaced and cluster-scoped paths, core and named groups, with
/// one name long enough to need a GNU long-name header.
pub(crate) fn objects(n: usize) -> Vec<(EntryPath, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let path = match i % 5 {
                0 => EntryPath::namespaced("pods", "", &format!("ns-{}", i % 7), &format!("web-{i}")),
                1 => EntryPath::namespaced("deployments", "apps", "shop", &format!("api-{i}")),
                2 => EntryPath::namespaced("secrets", "", "kube-system", &format!("{}-{i}", "s".repeat(200))),
                3 => EntryPath::cluster_scoped("namespaces", "", &format!("ns-{i}")),
                _ => EntryPath::cluster_scoped("clusterroles", "rbac.authorization.k8s.io", &format!("role:{i}")),
            };
            let json = format!(r#"{{"apiVersion":"v1","metadata":{{"name":"o{i}"}},"data":"{}"}}"#, "x".repeat(i));
            (path.unwrap(), json.into_bytes())
        })
        .collect()
}

/// Writes `objects` into an in-memory archive.
pub(crate) fn write(
    objects: &[(EntryPath, Vec<u8>)],
    options: &ArchiveOptions,
) -> (Vec<u8>, Vec<EntryRecord>, ArchiveSummary) {
    let mut out = Vec::new();
    let mut writer = ArchiveWriter::new(&mut out, options).unwrap();
    let records = objects.iter().map(|(path, json)| writer.append_object(path, json).unwrap()).collect();
    let summary = writer.finish().unwrap();
    (out, records, summary)
}

/// Reads every entry and finishes, stopping at the first error.
pub(crate) fn read_all(
    archive: &[u8],
    options: &ReadOptions,
) -> Result<(Vec<ArchiveEntry>, ArchiveSummary), ArchiveError> {
    let mut reader = ArchiveReader::new(archive, options)?;
    let entries = reader.entries()?.collect::<Result<Vec<_>, _>>()?;
    Ok((entries, reader.finish()?))
}
