//! Java's regex replacement syntax (`Matcher.replaceAll`), which Kafka Connect configs are written in: `$1`,
//! `${name}`, `\$` for a dollar. The regex crate reads `$1x` as a group named `1x` (empty), where Java reads group 1
//! then `x`; configs such as RegexRouter's `"replacement": "$1_$2"` depend on Java's reading.

use regex::{Captures, Regex};

/// A parsed replacement, applied with [`expand`](Self::expand) or [`replace_all`](Self::replace_all).
#[derive(Debug, Clone, PartialEq)]
pub struct Replacement {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Group(usize),
    Named(String),
    /// `${name}` that is no group of the pattern but one of the caller's placeholders (Confluent's `${key}`).
    Placeholder(String),
}

impl Replacement {
    /// Parses `text` for `regex`; `placeholders` are extra `${name}`s the caller fills in (a named group of the
    /// pattern wins over a placeholder of the same name). Errors say what Java would refuse.
    pub fn parse(text: &str, regex: &Regex, placeholders: &[&str]) -> Result<Self, String> {
        let groups = regex.captures_len() - 1;
        let names: Vec<&str> = regex.capture_names().flatten().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => literal.push(chars.next().ok_or_else(|| format!("{text:?} ends with a lone backslash"))?),
                '$' => {
                    let part = if chars.peek() == Some(&'{') {
                        chars.next();
                        let mut name = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(c) => name.push(c),
                                None => return Err(format!("{text:?}: `${{{name}` is not closed")),
                            }
                        }
                        if names.contains(&name.as_str()) {
                            Part::Named(name)
                        } else if placeholders.contains(&name.as_str()) {
                            Part::Placeholder(name)
                        } else {
                            return Err(format!("{text:?}: no group named {name:?} in {:?}", regex.as_str()));
                        }
                    } else {
                        // Java reads as many digits as still name an existing group.
                        let first = chars.next().and_then(|c| c.to_digit(10)).ok_or_else(|| {
                            format!("{text:?}: `$` must be followed by a group number or {{name}} (write \\$ for a dollar)")
                        })? as usize;
                        if first > groups {
                            return Err(format!("{text:?}: no group {first} in {:?}", regex.as_str()));
                        }
                        let mut group = first;
                        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                            if group * 10 + d as usize > groups {
                                break;
                            }
                            group = group * 10 + d as usize;
                            chars.next();
                        }
                        Part::Group(group)
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Replacement { parts })
    }

    /// Appends the replacement for one match to `out`; `placeholder` gives the caller's `${name}`s.
    pub fn expand(&self, caps: &Captures, placeholder: &dyn Fn(&str) -> String, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Group(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
                Part::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
                Part::Placeholder(n) => out.push_str(&placeholder(n)),
            }
        }
    }

    /// Every match of `regex` in `text` replaced, as Java's `String.replaceAll`.
    pub fn replace_all(&self, regex: &Regex, text: &str, placeholder: &dyn Fn(&str) -> String) -> String {
        regex
            .replace_all(text, |caps: &Captures| {
                let mut out = String::new();
                self.expand(caps, placeholder, &mut out);
                out
            })
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(pattern: &str, replacement: &str, text: &str) -> Result<String, String> {
        let regex = Regex::new(pattern).unwrap();
        let r = Replacement::parse(replacement, &regex, &["key"])?;
        Ok(r.replace_all(&regex, text, &|name| format!("<{name}>")))
    }

    #[test]
    fn java_reads_groups_and_escapes() {
        assert_eq!(replace("(a)(b)", "$1_$2", "ab").unwrap(), "a_b", "the regex crate would read a group named 1_");
        assert_eq!(replace("(a)(b)", "$2$1x", "ab").unwrap(), "bax");
        assert_eq!(replace("(a)(b)", "$12", "ab").unwrap(), "a2", "group 1 then 2: there is no group 12");
        assert_eq!(replace("(?P<w>a)", "<${w}>", "a").unwrap(), "<a>");
        assert_eq!(replace("a", r"\$1 ${key}", "a").unwrap(), "$1 <key>");
        assert!(replace("(a)", "$2", "a").is_err());
        assert!(replace("a", "$x", "a").is_err());
        assert!(replace("a", "${nope}", "a").is_err());
        assert!(replace("a", "${key", "a").is_err(), "an unclosed ${{ is refused, as Java does");
        assert!(replace("a", "x\\", "a").is_err());
    }
}
