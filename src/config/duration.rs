//! Durations as written in the configuration: `200ms`, `3s`, `1m`, `1h`, `1.5s`, `1m30s`.
//!
//! Bare numbers are rejected on purpose: `timeout: 3` is ambiguous (seconds? milliseconds?) and
//! a wrong guess in a fencing timer is dangerous. Pure string functions; no I/O.

use std::time::Duration;

/// Longest duration accepted (30 days): bounds arithmetic on timers and catches unit slips.
pub const MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses `200ms`, `3s`, `1.5s`, `1m`, `1h`, `1m30s` (units `us`, `ms`, `s`, `m`, `h`).
/// The error is a complete sentence about the input, suitable after `path: `.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration: write e.g. \"200ms\", \"3s\", \"1m\"".to_string());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "bare number {s} is not a duration: write the unit, e.g. \"{s}s\" or \"{s}ms\""
        ));
    }
    let bad = || format!("\"{s}\" is not a duration: write e.g. \"200ms\", \"3s\", \"1m\", \"1h\"");
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (num, after) = rest.split_at(num_len);
        let after = after.trim_start();
        let unit_len = after
            .char_indices()
            .find(|(_, c)| !c.is_alphabetic())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        if num.is_empty() || unit.is_empty() {
            return Err(bad());
        }
        let unit_nanos: u128 = match unit {
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(format!(
                    "unknown duration unit \"{other}\" in \"{s}\": use us, ms, s, m or h"
                ))
            }
        };
        let (int, frac) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if int.is_empty() || frac.contains('.') || (num.contains('.') && frac.is_empty()) {
            return Err(bad());
        }
        // Each part is bounded to 30 days below, so at most ~16 integer digits matter.
        if int.len() > 16 || frac.len() > 9 {
            return Err(format!(
                "\"{s}\" is out of range: the longest duration is 30 days"
            ));
        }
        let int_v: u128 = int.parse().map_err(|_| bad())?;
        let mut part = int_v.saturating_mul(unit_nanos);
        if !frac.is_empty() {
            let frac_v: u128 = frac.parse().map_err(|_| bad())?;
            let scale = 10u128.pow(frac.len() as u32);
            part = part.saturating_add(frac_v.saturating_mul(unit_nanos) / scale);
        }
        total_nanos = total_nanos.saturating_add(part);
        if total_nanos > MAX.as_nanos() {
            return Err(format!(
                "\"{s}\" is out of range: the longest duration is 30 days"
            ));
        }
        rest = after;
    }
    let secs = (total_nanos / 1_000_000_000) as u64;
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way the configuration writes it: `100ms`, `2s`, `1.6s`, `10m`, `1h`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos % 1_000_000 != 0 {
        return if nanos % 1000 == 0 {
            format!("{}us", nanos / 1000)
        } else {
            format!("{nanos}ns")
        };
    }
    let ms = nanos / 1_000_000;
    if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse(" 10s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("3 s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("5µs"), Ok(Duration::from_micros(5)));
    }

    #[test]
    fn rejects_bare_numbers_and_junk() {
        let e = parse("3").unwrap_err();
        assert_eq!(
            e,
            "bare number 3 is not a duration: write the unit, e.g. \"3s\" or \"3ms\""
        );
        assert!(parse("1.5").unwrap_err().starts_with("bare number"));
        assert_eq!(
            parse("3 sec").unwrap_err(),
            "unknown duration unit \"sec\" in \"3 sec\": use us, ms, s, m or h"
        );
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("1..5s").is_err());
        assert!(parse("1.s").is_err());
        assert!(parse("ms5").is_err());
        assert!(parse("31d").is_err());
        assert!(parse("999999999999999999999h")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse("800h").unwrap_err().contains("out of range"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["100ms", "2s", "1.6s", "10m", "1h", "90s", "250us", "1.05s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
        assert_eq!(format(Duration::from_millis(3600)), "3.6s");
    }
}
