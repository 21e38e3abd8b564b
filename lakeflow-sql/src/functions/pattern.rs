//! Spark's datetime patterns (`yyyy-MM-dd HH:mm:ss`, `EEEE`, `'T'`) as chrono format items.
//!
//! Spark documents its pattern letters in "Datetime Patterns for Formatting and Parsing";
//! the letters lakeflow translates are those a pipeline uses: years, months, days, day of
//! year, weekdays, hours, minutes, seconds, fractions, AM/PM and zones. Any other letter is
//! an error naming it.

use datafusion::common::{Result, plan_err};

/// A chrono format string for a Spark pattern.
pub fn to_chrono(pattern: &str) -> Result<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'quoted text', '' is a single quote
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                push_literal(&mut out, chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let item = match (c, n) {
            ('y' | 'u', 2) => "%y",
            ('y' | 'u', _) => "%Y",
            ('M' | 'L', 1) => "%-m",
            ('M' | 'L', 2) => "%m",
            ('M' | 'L', 3) => "%b",
            ('M' | 'L', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', 1 | 2) => "%-j",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('k', _) => "%-H",
            ('K', _) => "%-I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 1..=3) => match n {
                1 => "%1f",
                2 => "%2f",
                _ => "%3f",
            },
            ('S', 4..=6) => "%6f",
            ('S', _) => "%9f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('z', _) => "%Z",
            ('V', _) => "%Z",
            ('Z', _) | ('x', _) => "%z",
            ('X', _) | ('O', _) => "%:z",
            ('G', _) => "AD",
            (other, _) => {
                return plan_err!(
                    "the datetime pattern `{pattern}` uses the letter `{other}`, which lakeflow does not support; see Spark's datetime patterns"
                );
            }
        };
        out.push_str(item);
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::to_chrono;

    #[test]
    fn spark_patterns_translate() {
        assert_eq!(to_chrono("yyyyMMdd").unwrap(), "%Y%m%d");
        assert_eq!(
            to_chrono("MM-dd-yyyy HH:mm:ss").unwrap(),
            "%m-%d-%Y %H:%M:%S"
        );
        assert_eq!(to_chrono("EEEE").unwrap(), "%A");
        assert_eq!(
            to_chrono("yyyy-MM-dd'T'HH:mm:ss").unwrap(),
            "%Y-%m-%dT%H:%M:%S"
        );
        assert_eq!(to_chrono("hh:mm a").unwrap(), "%I:%M %p");
        assert!(to_chrono("yyyy-ww").is_err());
    }
}
