//! "Did you mean ...?" suggestions for unknown field names, verdict kinds and node names.

/// The candidate closest to `word` when it is plausibly a typo of it: Levenshtein distance at
/// most 1 for short words and at most a third of the length for longer ones. Case-insensitive
/// ties (`Heartbeat_Interval`) count as distance 0. Candidates are tried in the order given;
/// the first of equally close ones wins, so the result is deterministic.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = strsim::levenshtein(&lower, &c.to_ascii_lowercase());
        // A candidate that contains the word or vice versa (`interval` → `heartbeat_interval`)
        // is also a plausible slip when the word is long enough to be specific.
        let contained = word.len() >= 4 && (c.contains(word) || word.contains(c));
        let score = if d <= limit {
            d
        } else if contained {
            limit
        } else {
            continue;
        };
        if best.is_none_or(|(b, _)| score < b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: [&str; 4] = [
        "heartbeat_interval",
        "detect_multiplier",
        "reference_interval",
        "fence_deadline",
    ];

    #[test]
    fn suggests_typos() {
        assert_eq!(
            nearest("heartbeat_intervall", TIMING),
            Some("heartbeat_interval")
        );
        assert_eq!(
            nearest("hearbeat_interval", TIMING),
            Some("heartbeat_interval")
        );
        assert_eq!(
            nearest("Detect_Multiplier", TIMING),
            Some("detect_multiplier")
        );
        assert_eq!(nearest("fence_dedline", TIMING), Some("fence_deadline"));
        assert_eq!(
            nearest("refrence", ["references", "transport", "port"]),
            Some("references")
        );
        assert_eq!(
            nearest("interface", ["priority", "interfaces", "serial", "disk"]),
            Some("interfaces")
        );
    }

    #[test]
    fn no_suggestion_for_unrelated_words() {
        assert_eq!(nearest("colour", TIMING), None);
        assert_eq!(nearest("x", ["udp", "ethernet"]), None);
        assert_eq!(nearest("", TIMING), None);
    }
}
