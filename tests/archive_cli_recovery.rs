//! The operator's way out: an encrypted backup archive, recovered with the standard `age`,
//! `zstd` and `tar` tools alone (the pipeline in README.md), gives back every object as it
//! went in. Without the tools the test skips with its reason, except in CI (`CI=true`), where
//! it fails: `scripts/setup.sh` installs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat_shared::archive::{ArchiveOptions, ArchiveWriter, EntryPath, VERSION_PATH, generate_identity};

/// Exactly what README.md tells operators to run.
const PIPELINE: &str = "age -d -i key.txt archive | zstd -d | tar -x -C outdir";

fn missing_tools() -> Vec<&'static str> {
    ["age", "zstd", "tar"]
        .into_iter()
        .filter(|tool| !Command::new(tool).arg("--version").output().is_ok_and(|out| out.status.success()))
        .collect()
}

fn objects() -> Vec<(EntryPath, Vec<u8>)> {
    (0..150)
        .map(|i| {
            let path = match i % 5 {
                0 => EntryPath::namespaced("pods", "", &format!("team-{}", i % 4), &format!("web-{i}")),
                1 => EntryPath::namespaced("deployments", "apps", "shop", &format!("api-{i}")),
                2 => EntryPath::namespaced("secrets", "", "kube-system", &format!("{}-{i}", "long".repeat(60))),
                3 => EntryPath::cluster_scoped("namespaces", "", &format!("team-{i}")),
                _ => EntryPath::cluster_scoped("clusterroles", "rbac.authorization.k8s.io", &format!("system:r{i}")),
            };
            let json = format!(r#"{{"metadata":{{"name":"o{i}"}},"data":{{"k":"{}"}}}}"#, "v".repeat(i * 7));
            (path.expect("valid path"), json.into_bytes())
        })
        .collect()
}

/// Every regular file under `dir`, by its path relative to `dir`.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path: PathBuf = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_str().expect("UTF-8 path").to_owned();
                out.insert(relative, std::fs::read(&path).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn an_encrypted_archive_is_recovered_with_age_zstd_and_tar() {
    let missing = missing_tools();
    if !missing.is_empty() {
        let reason = format!("{} not installed (bash scripts/setup.sh installs them)", missing.join(", "));
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {reason}");
        eprintln!("skipping the recovery test: {reason}");
        return;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let (secret, public) = generate_identity();
    let options =
        ArchiveOptions { recipients: vec![public.clone()], mtime: 1_763_776_800, ..ArchiveOptions::default() };
    let objects = objects();
    let file = std::fs::File::create(dir.path().join("archive")).expect("create archive");
    let mut writer = ArchiveWriter::new(std::io::BufWriter::new(file), &options).expect("start archive");
    for (path, json) in &objects {
        writer.append_object(path, json).expect("append");
    }
    assert_eq!(writer.finish().expect("finish").entries, objects.len() as u64);
    let key = dir.path().join("key.txt");
    std::fs::write(&key, format!("# public key: {public}\n{secret}\n")).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    }
    std::fs::create_dir(dir.path().join("outdir")).expect("outdir");

    let out = Command::new("sh").arg("-c").arg(PIPELINE).current_dir(dir.path()).output().expect("run sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{PIPELINE}: {}\n{stderr}", out.status);

    let outdir = dir.path().join("outdir");
    let mut expected: BTreeMap<String, Vec<u8>> =
        objects.iter().map(|(path, json)| (path.as_str().to_owned(), json.clone())).collect();
    expected.insert(VERSION_PATH.to_owned(), b"1\n".to_vec());
    let extracted = files_under(&outdir);
    assert_eq!(extracted.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (path, bytes) in &expected {
        assert!(extracted.get(path) == Some(bytes), "{path} differs after extraction");
    }
    let mtime = std::fs::metadata(outdir.join(VERSION_PATH)).expect("version").modified().expect("mtime");
    assert_eq!(mtime.duration_since(std::time::UNIX_EPOCH).expect("after epoch").as_secs(), 1_763_776_800);
}
