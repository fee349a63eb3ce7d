//! Scrubbing credentials out of text that names a URL.
//!
//! An endpoint may carry `user:password@` (e.g. `http://AKIA:SECRET@host`),
//! and object_store repeats the full request URL in its error text and its
//! retry logs. Every error message ([`crate::Error::new`]) and every log
//! line of the Node addon passes through [`redact_userinfo`].

use std::borrow::Cow;

/// What replaces the userinfo of a URL.
pub const REDACTED: &str = "<redacted>";

/// `text` with the `user:password@` part of every `scheme://` URL in it
/// replaced by `<redacted>@`. The authority ends at the first `/`, `?`,
/// `#`, whitespace or quote; its userinfo is everything before its last `@`.
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) if userinfo_end > 0 => {
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `url` without its `user:password@`, and whether it had one. S3
/// requests are signed with the access key, never with URL credentials,
/// and the HTTP stack logs the authority as is (hyper's connection pool, at
/// TRACE): an endpoint is therefore handed to the client without them.
pub fn strip_userinfo(url: &str) -> (String, bool) {
    let Some(at) = url.find("://") else {
        return (url.to_string(), false);
    };
    let start = at + 3;
    let tail = &url[start..];
    let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    match tail[..end].rfind('@') {
        Some(userinfo_end) => (
            format!("{}{}", &url[..start], &tail[userinfo_end + 1..]),
            true,
        ),
        None => (url.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_loses_its_userinfo_and_keeps_the_rest() {
        assert_eq!(
            strip_userinfo("http://AKIA:SE@CRET@127.0.0.1:9/base?x#y"),
            ("http://127.0.0.1:9/base?x#y".to_string(), true)
        );
        assert_eq!(
            strip_userinfo("https://s3.example.com"),
            ("https://s3.example.com".to_string(), false)
        );
        assert_eq!(
            strip_userinfo("http://h:9/p@q"),
            ("http://h:9/p@q".to_string(), false)
        );
    }

    #[test]
    fn userinfo_of_every_url_is_replaced() {
        assert_eq!(
            redact_userinfo(
                "Error performing HEAD http://AKIA:SECRET@127.0.0.1:9/b/k in 1ms, \
                 then 'https://u@h/x' and s3://k:p%40q@bucket"
            ),
            "Error performing HEAD http://<redacted>@127.0.0.1:9/b/k in 1ms, \
             then 'https://<redacted>@h/x' and s3://<redacted>@bucket"
        );
    }

    #[test]
    fn text_without_userinfo_is_untouched() {
        for text in [
            "no url here",
            "http://127.0.0.1:9/path?x=a@b",
            "mail me: a@b.c, see http://host/p",
            "file:///tmp/a@b",
            "ends with ://",
        ] {
            assert_eq!(redact_userinfo(text), text);
        }
    }

    #[test]
    fn an_at_sign_in_the_password_does_not_leave_its_tail() {
        let out = redact_userinfo("endpoint http://AKIA:SE@CRET@host:9");
        assert_eq!(out, "endpoint http://<redacted>@host:9");
        assert!(!out.contains("CRET"));
    }
}
