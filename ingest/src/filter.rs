//! Which records a reader keeps, by provider or channel and event id: what `scan` (with no
//! store to keep) knows its rules can ever read. A record is kept when its event id is listed
//! for its provider or for its channel (names compared case-insensitively, as the rules'
//! `lower(provider) = ...` does); every other record is skipped right after its System part is
//! read, before its payload is rendered, and counted.

/// Records to keep; `None` in the options keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Lowercased provider or channel name, and its event ids (sorted).
    sources: Vec<(String, Vec<u32>)>,
}

impl RecordFilter {
    /// A filter from `(provider or channel, event ids)` pairs; the same name twice merges.
    pub fn new<S: AsRef<str>>(sources: impl IntoIterator<Item = (S, Vec<u32>)>) -> Self {
        let mut out: Vec<(String, Vec<u32>)> = Vec::new();
        for (name, ids) in sources {
            let name = name.as_ref().to_lowercase();
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, have)) => have.extend(ids),
                None => out.push((name, ids)),
            }
        }
        for (_, ids) in &mut out {
            ids.sort_unstable();
            ids.dedup();
        }
        out.sort();
        RecordFilter { sources: out }
    }

    /// Whether a record with this provider, channel and event id is kept.
    pub fn keeps(
        &self,
        provider: Option<&str>,
        channel: Option<&str>,
        event_id: Option<u64>,
    ) -> bool {
        let Some(id) = event_id.and_then(|e| u32::try_from(e).ok()) else {
            return false;
        };
        self.sources.iter().any(|(name, ids)| {
            ids.binary_search(&id).is_ok()
                && (same_name(provider, name) || same_name(channel, name))
        })
    }

    /// The `(name, event ids)` pairs, lowercased and sorted.
    pub fn sources(&self) -> &[(String, Vec<u32>)] {
        &self.sources
    }
}

/// `value` equals the lowercased `name`, ignoring case as SQL's `lower()` does.
fn same_name(value: Option<&str>, name: &str) -> bool {
    match value {
        Some(v) if v.is_ascii() => v.eq_ignore_ascii_case(name),
        Some(v) => v.to_lowercase() == name,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_by_provider_or_channel_and_id() {
        let f = RecordFilter::new([
            ("Microsoft-Windows-SMBClient", vec![31017, 31022]),
            ("Security", vec![4624]),
            ("microsoft-windows-smbclient", vec![31018]),
        ]);
        let smb = Some("Microsoft-Windows-SmbClient");
        assert!(f.keeps(
            smb,
            Some("Microsoft-Windows-SmbClient/Security"),
            Some(31017)
        ));
        assert!(f.keeps(smb, None, Some(31018)));
        assert!(!f.keeps(smb, None, Some(4624)));
        assert!(f.keeps(
            Some("Microsoft-Windows-Security-Auditing"),
            Some("SECURITY"),
            Some(4624)
        ));
        assert!(!f.keeps(
            Some("Microsoft-Windows-Security-Auditing"),
            Some("Security"),
            None
        ));
        assert!(!f.keeps(None, None, Some(4624)));
        let u = RecordFilter::new([("ÜBER", vec![1])]);
        assert!(u.keeps(Some("über"), None, Some(1)));
    }
}
