//! A style pack as one file: a plain tar (POSIX ustar) of its folder, `<id>/style.json`, the
//! weights and the previews. The page downloads a pack in this form and takes one dropped on it;
//! the CLI reads it wherever it takes a pack folder; `tar -xf mine.tar -C models/` unpacks it.
//!
//! Hand-written rather than the `tar` crate: a pack needs only regular files with short names,
//! and this reader and writer build for the browser without the crate's file-system
//! dependencies. The reader takes what GNU and BSD tar write for such a folder (directory and
//! extended-header entries are skipped).

use super::{MANIFEST_FILE, MAX_JSON_BYTES, MAX_WEIGHTS_BYTES, Manifest, PackError, StylePack};

const BLOCK: usize = 512;
/// Files an archive may hold: a manifest, weights and a preview per style leave room to spare.
const MAX_FILES: usize = 256;

/// One file of a pack: its name inside the pack folder and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Whether `bytes` start like a tar archive (the ustar magic of the first header).
pub fn is_archive(bytes: &[u8]) -> bool {
    bytes.len() >= BLOCK && &bytes[257..262] == b"ustar"
}

/// Whether a header is POSIX ustar's (GNU tar's own format keeps other fields where ustar has
/// the name prefix).
fn is_posix(header: &[u8]) -> bool {
    &header[257..263] == b"ustar\0"
}

/// The archive of a pack `id` made of `files` (each under `id/`), with fixed modes and times so
/// the same pack always gives the same bytes. A file name over 100 bytes cannot be stored.
pub fn write(id: &str, files: &[PackFile]) -> Result<Vec<u8>, PackError> {
    let mut out = Vec::new();
    for file in files {
        let mut header = [0u8; BLOCK];
        let path = format!("{id}/{}", file.name);
        if path.len() <= 100 {
            put(&mut header[0..100], path.as_bytes());
        } else if file.name.len() <= 100 && id.len() <= 155 {
            // ustar's split: the folder in the prefix field, the file in the name field.
            put(&mut header[0..100], file.name.as_bytes());
            put(&mut header[345..500], id.as_bytes());
        } else {
            return Err(PackError::InvalidManifest {
                file: file.name.clone(),
                message: "a file name over 100 bytes cannot go into a pack archive".into(),
            });
        }
        put(&mut header[100..108], b"0000644\0");
        put(&mut header[108..116], b"0000000\0");
        put(&mut header[116..124], b"0000000\0");
        put(
            &mut header[124..136],
            format!("{:011o}\0", file.bytes.len()).as_bytes(),
        );
        put(&mut header[136..148], b"00000000000\0");
        header[156] = b'0';
        put(&mut header[257..265], b"ustar\x0000");
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|&b| b as u32).sum();
        put(&mut header[148..156], format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&file.bytes);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

fn put(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

/// The regular files of an archive, with their paths as stored.
fn read(source: &str, bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, PackError> {
    let bad = |message: String| PackError::InvalidManifest {
        file: source.to_string(),
        message: format!("not a readable pack archive: {message}"),
    };
    let mut files = Vec::new();
    let mut at = 0;
    while at + BLOCK <= bytes.len() {
        let header = &bytes[at..at + BLOCK];
        if header.iter().all(|&b| b == 0) {
            return Ok(files);
        }
        let stored: u32 = octal(&header[148..156])
            .ok_or_else(|| bad("a header's checksum is not a number".into()))?
            as u32;
        let sum: u32 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    b' ' as u32
                } else {
                    b as u32
                }
            })
            .sum();
        if stored != sum {
            return Err(bad(format!(
                "the header at byte {at} is damaged (checksum)"
            )));
        }
        let size =
            octal(&header[124..136]).ok_or_else(|| bad("a file size is not a number".into()))?;
        let start = at + BLOCK;
        let end = usize::try_from(size)
            .ok()
            .and_then(|size| start.checked_add(size))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| bad("it is truncated".into()))?;
        let name = |range: std::ops::Range<usize>| {
            let field = &header[range];
            let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            String::from_utf8_lossy(&field[..len]).into_owned()
        };
        let mut path = name(0..100);
        if is_posix(header) && header[345] != 0 {
            path = format!("{}/{path}", name(345..500));
        }
        match header[156] {
            b'0' | 0 => {
                if files.len() == MAX_FILES {
                    return Err(bad(format!("more than {MAX_FILES} files")));
                }
                files.push((path, bytes[start..end].to_vec()));
            }
            // Directories, links and extended headers (pax, GNU long names) carry no pack file.
            _ => {}
        }
        at = start + end.saturating_sub(start).next_multiple_of(BLOCK);
    }
    Err(bad("it ends without its closing blocks (truncated)".into()))
}

/// An octal header field (NUL- or space-terminated, possibly space-padded).
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

impl StylePack {
    /// A pack from its archive (see the module): the verified pack, and every other file of
    /// the pack's folder (its previews) by name.
    pub fn from_archive(source: &str, bytes: &[u8]) -> Result<(Self, Vec<PackFile>), PackError> {
        let files = read(source, bytes)?;
        // The manifest at the top (`style.json`) or one folder down (`id/style.json`).
        let manifest_at = files
            .iter()
            .filter_map(|(path, _)| {
                let path = path.trim_start_matches("./");
                let folder = path.strip_suffix(MANIFEST_FILE)?;
                (folder.is_empty()
                    || (folder.ends_with('/') && !folder[..folder.len() - 1].contains('/')))
                .then(|| folder.to_string())
            })
            .collect::<Vec<_>>();
        let manifest_at = match manifest_at.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(PackError::Missing {
                    file: format!("{source}: {MANIFEST_FILE}"),
                });
            }
            several => {
                return Err(PackError::InvalidManifest {
                    file: source.to_string(),
                    message: format!(
                        "an archive holds one pack, this one {} ({}): archive one pack folder",
                        several.len(),
                        several.join(", ")
                    ),
                });
            }
        };
        let mut manifest = None;
        let mut others = Vec::new();
        for (path, data) in files {
            let Some(name) = path
                .trim_start_matches("./")
                .strip_prefix(manifest_at.as_str())
            else {
                continue;
            };
            if name.is_empty() || name.contains('/') {
                continue;
            }
            if name == MANIFEST_FILE {
                manifest = Some(data);
            } else {
                others.push(PackFile {
                    name: name.to_string(),
                    bytes: data,
                });
            }
        }
        let manifest_bytes = manifest.expect("the manifest was found above");
        let label = format!("{source}: {manifest_at}{MANIFEST_FILE}");
        if manifest_bytes.len() > MAX_JSON_BYTES {
            return Err(PackError::InvalidManifest {
                file: label,
                message: format!("larger than {MAX_JSON_BYTES} bytes"),
            });
        }
        let parsed = Manifest::parse(&label, &manifest_bytes)?;
        let weights = if parsed.weights.is_none() {
            Vec::new()
        } else {
            let at = others
                .iter()
                .position(|f| f.name == parsed.weights.file)
                .ok_or_else(|| PackError::Missing {
                    file: format!("{source}: {manifest_at}{}", parsed.weights.file),
                })?;
            let weights = others.remove(at).bytes;
            if weights.len() as u64 > MAX_WEIGHTS_BYTES {
                return Err(PackError::InvalidManifest {
                    file: format!("{source}: {}", parsed.weights.file),
                    message: format!("weights over {MAX_WEIGHTS_BYTES} bytes are refused"),
                });
            }
            weights
        };
        // A damaged weights file is named inside its archive.
        let weights_label = format!("{source}: {manifest_at}{}", parsed.weights.file);
        let pack = StylePack::from_bytes(&label, &manifest_bytes, weights)
            .map_err(|e| e.at(std::path::Path::new(&weights_label)))?;
        Ok((pack, others))
    }

    /// The previews the manifest names, read from the pack's folder (none for a pack built from
    /// bytes), each once.
    pub fn preview_files(&self) -> Result<Vec<PackFile>, PackError> {
        let Some(dir) = self.dir() else {
            return Ok(Vec::new());
        };
        let manifest = &self.manifest;
        let mut files: Vec<PackFile> = Vec::new();
        let names = manifest
            .preview
            .iter()
            .chain(manifest.styles.iter().filter_map(|s| s.preview.as_ref()));
        for name in names {
            if files.iter().any(|f| &f.name == name) {
                continue;
            }
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|source| PackError::Io { path, source })?;
            files.push(PackFile {
                name: name.clone(),
                bytes,
            });
        }
        Ok(files)
    }

    /// This pack as one archive: its manifest, weights and the `extra` files (previews).
    pub fn to_archive(&self, extra: &[PackFile]) -> Result<Vec<u8>, PackError> {
        let mut files = vec![PackFile {
            name: MANIFEST_FILE.to_string(),
            bytes: serde_json::to_vec_pretty(&self.manifest).expect("manifests always serialise"),
        }];
        if !self.manifest.weights.is_none() {
            files.push(PackFile {
                name: self.manifest.weights.file.clone(),
                bytes: self.weights.clone(),
            });
        }
        files.extend(extra.iter().cloned());
        write(&self.manifest.id, &files)
    }
}
