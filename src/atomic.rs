//! Files written whole or not at all: packs, checkpoints' pointers, logs, results. One home for
//! the one way the project writes a file a crash must not leave half-written.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Write through a temporary file in the same folder and rename it over `path`, so a crash never
/// leaves a half-written file behind. The error is the operating system's (the caller names the
/// file: it knows what the file is for).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_write_leaves_neither_the_target_nor_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("missing-folder").join("file.txt");
        assert!(super::write(&target, b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let target = dir.path().join("file.txt");
        super::write(&target, b"first").unwrap();
        super::write(&target, b"second").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
