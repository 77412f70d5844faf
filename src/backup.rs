//! Backup files: the manifest written beside each dump, streaming a child's stdout to disk with a
//! running SHA-256 (memory stays bounded whatever the size), and checking a file before restore.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::Failure;

/// Size of the copy buffer: the only memory a backup or restore needs for data.
pub const CHUNK: usize = 256 * 1024;
/// The first bytes of a `pg_dump -Fc` archive.
pub const CUSTOM_FORMAT_MAGIC: &[u8] = b"PGDMP";

/// What the `.json` beside a dump records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// `pg_dump-custom` (one database) or `pg_dumpall-sql` (roles and all databases).
    pub format: String,
    /// The dumped database (`*` for pg_dumpall).
    pub database: String,
    /// Release and namespace it came from.
    pub release: String,
    /// Namespace it came from.
    pub namespace: String,
    /// Server version at dump time.
    pub server_version: String,
    /// Newest applied migration at dump time.
    pub migration_version: Option<u64>,
    /// Size of the dump in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the dump, hex.
    pub sha256: String,
    /// When the dump finished (UTC, RFC 3339).
    pub created_at: String,
    /// The pgk8s version that wrote it.
    pub pgk8s_version: String,
}

/// The formats `pgk8s backup` writes.
pub const FORMATS: [&str; 2] = ["pg_dump-custom", "pg_dumpall-sql"];
/// Manifests are a few hundred bytes; a larger file is not one.
const MANIFEST_MAX: u64 = 64 * 1024;

impl Manifest {
    /// Checks the fields a restore relies on: a known format, a SHA-256 of 64 hex digits.
    pub fn validate(&self) -> Result<(), String> {
        if !FORMATS.contains(&self.format.as_str()) {
            return Err(format!(
                "format {:?} is none of {}",
                self.format,
                FORMATS.join(", ")
            ));
        }
        let hex_digits = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !hex_digits {
            return Err("sha256 is not 64 lowercase hex digits".to_string());
        }
        Ok(())
    }
}

/// The manifest path of `dump`: the same name with `.json` appended.
pub fn manifest_path(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Streams `reader` into `writer`, returning the byte count and SHA-256 (hex).
pub async fn copy_hashing<R, W>(reader: &mut R, writer: &mut W) -> std::io::Result<(u64, String)>
where
    R: AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        writer.write_all(&buffer[..read]).await?;
        total += read as u64;
    }
    writer.flush().await?;
    Ok((total, hex(&hasher.finalize())))
}

/// SHA-256 (hex) and size of a file, read in chunks.
pub async fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    copy_hashing(&mut file, &mut tokio::io::sink()).await
}

/// Checks a dump against its manifest before anything is restored. Returns the manifest.
pub async fn check(dump: &Path) -> Result<Manifest, Failure> {
    let shown = dump.display();
    crate::input::open_regular(dump).map_err(|why| {
        Failure::usage(format!("cannot read backup {shown}: {why}"))
            .hint("pass the .dump file `pgk8s backup` wrote with -f/--file")
    })?;
    let manifest_file = manifest_path(dump);
    let text = crate::input::read_regular_text(&manifest_file, MANIFEST_MAX).map_err(|why| {
        Failure::usage(format!(
            "cannot read the manifest {} of {shown}: {why}",
            manifest_file.display()
        ))
        .hint("restore reads files written by `pgk8s backup`, which puts FILE.json beside FILE")
    })?;
    let not_a_manifest = |why: String| {
        Failure::usage(format!(
            "{} is not a pgk8s backup manifest: {why}",
            manifest_file.display()
        ))
        .hint("restore reads the FILE.json `pgk8s backup` wrote beside FILE; nothing was restored")
    };
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|error| not_a_manifest(error.to_string()))?;
    manifest.validate().map_err(not_a_manifest)?;
    let (size, sha256) = hash_file(dump)
        .await
        .map_err(|error| Failure::usage(format!("cannot read backup {shown}: {error}")))?;
    if size != manifest.size_bytes || sha256 != manifest.sha256 {
        return Err(Failure::usage(format!(
            "backup {shown} does not match its manifest ({size} bytes, sha256 {}…; expected {} bytes, {}…): it is truncated or corrupted",
            &sha256[..12],
            manifest.size_bytes,
            &manifest.sha256[..12]
        ))
        .hint("nothing was restored; use an intact copy of the backup"));
    }
    if manifest.format == "pg_dump-custom" {
        let mut magic = [0u8; 5];
        let mut file = std::fs::File::open(dump)
            .map_err(|error| Failure::usage(format!("cannot read {shown}: {error}")))?;
        let is_custom = std::io::Read::read_exact(&mut file, &mut magic).is_ok()
            && magic == CUSTOM_FORMAT_MAGIC;
        if !is_custom {
            return Err(Failure::usage(format!(
                "backup {shown} is not a pg_dump custom-format archive"
            ))
            .hint("restore takes the .dump files `pgk8s backup` writes; nothing was restored"));
        }
    }
    Ok(manifest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copying_hashes_what_it_writes() {
        let data = vec![7u8; CHUNK * 3 + 11];
        let mut written = Vec::new();
        let (size, sha256) = copy_hashing(&mut data.as_slice(), &mut written)
            .await
            .unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(written, data);
        assert_eq!(sha256, hex(&Sha256::digest(&data)));
    }

    #[test]
    fn the_manifest_sits_beside_the_dump() {
        assert_eq!(
            manifest_path(Path::new("/b/x.dump")),
            PathBuf::from("/b/x.dump.json")
        );
    }
}
