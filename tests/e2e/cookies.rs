//! `Set-Cookie` parsing and a cookie jar, kept by hand so tests can check every attribute.

use std::collections::BTreeMap;

use crate::http::Response;

/// One parsed `Set-Cookie` header.
#[derive(Clone, Debug)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attribute names in lower case, with their values when they have one.
    attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub(crate) fn parse(header: &str) -> SetCookie {
        let mut parts = header.split(';');
        let pair = parts.next().unwrap_or_default();
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let attributes = parts
            .map(|attribute| match attribute.split_once('=') {
                Some((key, value)) => (key.trim().to_ascii_lowercase(), Some(value.trim().to_owned())),
                None => (attribute.trim().to_ascii_lowercase(), None),
            })
            .collect();
        SetCookie { name: name.trim().to_owned(), value: value.trim().to_owned(), attributes }
    }

    fn attribute(&self, name: &str) -> Option<&Option<String>> {
        self.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    pub fn has_flag(&self, name: &str) -> bool {
        self.attribute(&name.to_ascii_lowercase()).is_some()
    }

    pub fn path(&self) -> Option<&str> {
        self.attribute("path")?.as_deref()
    }

    pub fn same_site(&self) -> Option<&str> {
        self.attribute("samesite")?.as_deref()
    }

    /// Returns Max-Age in seconds, or `None` when it is absent or not an integer.
    pub fn max_age(&self) -> Option<i64> {
        self.attribute("max-age")?.as_deref()?.parse().ok()
    }

    /// Returns whether the cookie removes itself: Max-Age zero or less, or Expires in the past.
    pub fn is_removal(&self) -> bool {
        if self.max_age().is_some_and(|seconds| seconds <= 0) {
            return true;
        }
        let expires = self.attribute("expires").and_then(|value| value.as_deref());
        expires
            .and_then(|date| chrono::DateTime::parse_from_rfc2822(date).ok())
            .is_some_and(|date| date < chrono::Utc::now())
    }
}

/// The cookies a browser would keep, by name.
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    cookies: BTreeMap<String, String>,
}

impl CookieJar {
    pub fn from_response(response: &Response) -> CookieJar {
        let mut jar = CookieJar::default();
        jar.update(response);
        jar
    }

    /// Applies the `Set-Cookie` headers of `response`: stores new values and drops removed cookies.
    pub fn update(&mut self, response: &Response) {
        for cookie in response.set_cookies() {
            if cookie.is_removal() {
                self.cookies.remove(&cookie.name);
            } else {
                self.cookies.insert(cookie.name, cookie.value);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Returns a copy without cookie `name`.
    pub fn without(&self, name: &str) -> CookieJar {
        let mut copy = self.clone();
        copy.cookies.remove(name);
        copy
    }

    /// Returns the value of a `Cookie` header carrying every cookie, or `None` when the jar is empty.
    pub(crate) fn header_value(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
        Some(pairs.join("; "))
    }
}
