//! Parsing of storage root URIs (`file://`, plain paths, `memory://`).

use std::path::{Component, Path as FsPath, PathBuf};

use crate::error::{Error, Result};

/// Where a storage root points, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootLocation {
    /// An absolute directory on the local filesystem.
    Local(PathBuf),
    /// A named in-process memory store; the same name always reaches the same store.
    Memory { name: String, prefix: String },
    /// An S3 (or S3-compatible) bucket and a key prefix inside it.
    S3 { bucket: String, prefix: String },
}

/// Parse a storage root. Plain paths may be relative (resolved against the
/// working directory); `file://` URIs must be absolute.
pub fn parse_root_uri(uri: &str) -> Result<RootLocation> {
    let trimmed = uri.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid_input("Storage root must not be empty"));
    }
    if trimmed.contains('\0') {
        return Err(Error::invalid_input(
            "Storage root must not contain NUL characters",
        ));
    }
    if let Some(rest) = trimmed.strip_prefix("memory://") {
        let (name, prefix) = match rest.split_once('/') {
            Some((name, prefix)) => (name, prefix.trim_matches('/')),
            None => (rest, ""),
        };
        if name.is_empty() {
            return Err(Error::invalid_input(format!(
                "Storage root '{uri}' needs a store name, as in memory://name"
            )));
        }
        check_segments(uri, prefix.split('/').filter(|s| !s.is_empty()))?;
        return Ok(RootLocation::Memory {
            name: name.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(rest) = trimmed.strip_prefix("s3://") {
        let (bucket, prefix) = match rest.split_once('/') {
            Some((bucket, prefix)) => (bucket, prefix.trim_matches('/')),
            None => (rest, ""),
        };
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(Error::invalid_input(format!(
                "Storage root '{uri}' needs a bucket name (3-63 lowercase letters, digits, '-' or '.'), as in s3://bucket/prefix"
            )));
        }
        check_segments(uri, prefix.split('/').filter(|s| !s.is_empty()))?;
        return Ok(RootLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(rest) = trimmed.strip_prefix("file://") {
        // file:///abs/dir has an empty host; file://localhost/abs is tolerated.
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            return Err(Error::invalid_input(format!(
                "Storage root '{uri}' is not an absolute file URI; use file:///absolute/path"
            )));
        }
        return local_root(uri, PathBuf::from(decode_file_path(uri, path)?));
    }
    if trimmed.starts_with("file:") {
        // `file:/abs` (one slash) and `file:relative`: refuse rather than
        // treat them as a relative directory named `file:`.
        return Err(Error::invalid_input(format!(
            "Storage root '{uri}' is not a file URI memwal accepts; use file:///absolute/path"
        )));
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(Error::invalid_input(format!(
            "Unsupported storage scheme '{scheme}://' in '{uri}'; expected file://, memory://, s3:// or a path"
        )));
    }
    let path = PathBuf::from(trimmed);
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(format!("Cannot resolve relative root '{uri}': {e}")))?
            .join(path)
    };
    local_root(uri, absolute)
}

/// The directory a `file://` URI's path names. A query or fragment has no
/// meaning for a directory (it would silently become part of its name), and
/// an escape must not produce what the raw text could not say directly: a
/// `.`/`..` segment (which would climb), a `/` inside a segment, or NUL.
fn decode_file_path(uri: &str, path: &str) -> Result<String> {
    if path.contains(['?', '#']) {
        return Err(Error::invalid_input(format!(
            "Storage root '{uri}' has a query or fragment ('?' or '#'); a file URI names a \
             directory only (write them as %3F and %23 if they are part of its name)"
        )));
    }
    let mut decoded = Vec::new();
    for raw in path.split('/') {
        let segment = percent_decode(raw).ok_or_else(|| {
            Error::invalid_input(format!("Storage root '{uri}' has bad %-escapes"))
        })?;
        let escaped_dots = raw != segment && (segment == "." || segment == "..");
        if escaped_dots || segment.contains(['/', '\0']) {
            return Err(Error::invalid_input(format!(
                "Storage root '{uri}' has a %-escaped '{raw}' segment that decodes to a path \
                 separator, NUL or a '.'/'..' segment; refusing it"
            )));
        }
        decoded.push(segment);
    }
    Ok(decoded.join("/"))
}

fn local_root(uri: &str, path: PathBuf) -> Result<RootLocation> {
    // Normalise away `.` and resolve `..` lexically so that the root is a
    // plain absolute directory; object_store refuses `..` segments anyway.
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !clean.pop() {
                    return Err(Error::invalid_input(format!(
                        "Storage root '{uri}' escapes the filesystem root"
                    )));
                }
            }
            Component::CurDir => {}
            other => clean.push(other.as_os_str()),
        }
    }
    if clean.parent().is_none() && clean == FsPath::new("/") {
        return Err(Error::invalid_input(format!(
            "Storage root '{uri}' is the filesystem root; choose a directory"
        )));
    }
    Ok(RootLocation::Local(clean))
}

fn check_segments<'a>(uri: &str, segments: impl Iterator<Item = &'a str>) -> Result<()> {
    for segment in segments {
        if segment == "." || segment == ".." {
            return Err(Error::invalid_input(format!(
                "Storage root '{uri}' must not contain '.' or '..' segments"
            )));
        }
    }
    Ok(())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn file_uri_and_plain_path_reach_the_same_directory() {
        assert_eq!(
            parse_root_uri("file:///tmp/a/b").unwrap(),
            RootLocation::Local("/tmp/a/b".into())
        );
        assert_eq!(
            parse_root_uri("/tmp/a/b").unwrap(),
            RootLocation::Local("/tmp/a/b".into())
        );
        assert_eq!(
            parse_root_uri("file:///tmp/with%20space").unwrap(),
            RootLocation::Local("/tmp/with space".into())
        );
        // Escaped characters that are ordinary in a name stay allowed.
        assert_eq!(
            parse_root_uri("file:///tmp/a%3Fb%23c/%2e%2e.d").unwrap(),
            RootLocation::Local("/tmp/a?b#c/...d".into())
        );
    }

    #[test]
    fn file_uris_without_two_slashes_are_refused_not_relative_paths() {
        for uri in ["file:/tmp/one-slash", "file:relative", "file:"] {
            let err = parse_root_uri(uri).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{uri}");
            assert!(err.message().contains("file:///"), "{err}");
        }
    }

    #[test]
    fn relative_plain_path_resolves_against_cwd() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            parse_root_uri("data").unwrap(),
            RootLocation::Local(cwd.join("data"))
        );
    }

    #[test]
    fn memory_uri_has_a_name_and_optional_prefix() {
        assert_eq!(
            parse_root_uri("memory://t1/a/b/").unwrap(),
            RootLocation::Memory {
                name: "t1".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            parse_root_uri("memory://t1").unwrap(),
            RootLocation::Memory {
                name: "t1".into(),
                prefix: "".into()
            }
        );
    }

    #[test]
    fn bad_roots_are_invalid_input() {
        for uri in [
            "",
            "   ",
            "file://relative/dir",
            "ftp://host/x",
            "memory://",
            "memory://x/../y",
            "/..",
            "/",
            "file:///bad%zz",
        ] {
            let err = parse_root_uri(uri).expect_err(uri);
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{uri}: {err}");
        }
    }

    /// Escapes decoded to `..` climbed out of the named directory, and a
    /// query or fragment became part of the directory's name.
    #[test]
    fn file_uris_with_escaped_dots_separators_queries_or_fragments_are_refused() {
        for uri in [
            "file:///a/%2e%2e/b",
            "file:///a/%2E%2E/b",
            "file:///a/.%2e/b",
            "file:///a/%2e/b",
            "file:///a/x%2f..%2fy",
            "file:///a/b%00c",
            "file:///tmp/dir?x=1#y",
            "file:///tmp/dir?x=1",
            "file:///tmp/dir#y",
        ] {
            let err = parse_root_uri(uri).expect_err(uri);
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{uri}: {err}");
        }
    }
}
