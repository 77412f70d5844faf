//! Local files pgk8s reads as input (`--values`, migration and seed files, backup manifests):
//! regular files only, read with a bound.
//!
//! A device or FIFO where a file is expected (`--values /dev/zero`, a named pipe) would make pgk8s
//! read forever or block; a runaway file would be read whole into memory. Both are refused with a
//! reason before anything else happens.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Opens `path` for reading if it is a regular file (after following links), else says why.
pub fn open_regular(path: &Path) -> Result<File, String> {
    let file = File::open(path).map_err(|error| error.to_string())?;
    let metadata = file.metadata().map_err(|error| error.to_string())?;
    if !metadata.is_file() {
        return Err("it is not a regular file".to_string());
    }
    Ok(file)
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "it is larger than {} MiB",
            limit.div_ceil(1024 * 1024)
        ));
    }
    Ok(bytes)
}

/// Reads a regular UTF-8 text file of at most `limit` bytes.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, String> {
    String::from_utf8(read_regular(path, limit)?).map_err(|_| "it is not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused_and_files_are_bounded() {
        assert_eq!(
            read_regular(Path::new("/dev/zero"), 1024).unwrap_err(),
            "it is not a regular file"
        );
        assert_eq!(
            read_regular(Path::new("/"), 1024).unwrap_err(),
            "it is not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, vec![b'a'; 2048]).unwrap();
        assert_eq!(read_regular(&file, 4096).unwrap().len(), 2048);
        assert!(
            read_regular(&file, 1024)
                .unwrap_err()
                .contains("larger than")
        );
    }
}
