//! Hand-written JSON and time formatting into a reused byte buffer.
//!
//! The simulator writes hundreds of thousands of events a second, so events are
//! never built as `serde_json::Value`: every field is appended to one `Vec<u8>`
//! that is cleared, not reallocated, between lines.

use rand::Rng;

/// Appends `text` as a JSON string literal (with quotes), escaping the
/// characters JSON requires.
pub(crate) fn push_string(buffer: &mut Vec<u8>, text: &str) {
    buffer.push(b'"');
    push_escaped(buffer, text);
    buffer.push(b'"');
}

/// Bytes that need an escape inside a JSON string. The API server's audit
/// backend does not HTML-escape (`&`, `<`, `>` stay as they are in URIs).
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `text` escaped for the inside of a JSON string literal.
pub(crate) fn push_escaped(buffer: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Almost every string needs no escape: copy it whole.
    let Some(first) = bytes.iter().position(|&byte| NEEDS_ESCAPE[byte as usize]) else {
        buffer.extend_from_slice(bytes);
        return;
    };
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate().skip(first) {
        if !NEEDS_ESCAPE[byte as usize] {
            continue;
        }
        buffer.extend_from_slice(&bytes[start..index]);
        match byte {
            b'"' => buffer.extend_from_slice(b"\\\""),
            b'\\' => buffer.extend_from_slice(b"\\\\"),
            b'\n' => buffer.extend_from_slice(b"\\n"),
            b'\r' => buffer.extend_from_slice(b"\\r"),
            b'\t' => buffer.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buffer.extend_from_slice(b"\\u00");
                buffer.push(HEX[(byte >> 4) as usize]);
                buffer.push(HEX[(byte & 15) as usize]);
            }
        }
        start = index + 1;
    }
    buffer.extend_from_slice(&bytes[start..]);
}

/// Returns `text` as a JSON string literal.
pub(crate) fn quoted(text: &str) -> String {
    let mut buffer = Vec::with_capacity(text.len() + 2);
    push_string(&mut buffer, text);
    // Only ASCII escapes were added to valid UTF-8.
    String::from_utf8(buffer).unwrap_or_default()
}

pub(crate) fn push_u64(buffer: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut position = digits.len();
    loop {
        position -= 1;
        digits[position] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    buffer.extend_from_slice(&digits[position..]);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn push_two(buffer: &mut Vec<u8>, value: u32) {
    buffer.push(b'0' + (value / 10 % 10) as u8);
    buffer.push(b'0' + (value % 10) as u8);
}

/// The date and time parts of a UTC instant given in microseconds.
pub(crate) struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

pub(crate) fn civil_time(micros: i64) -> CivilTime {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000) as u32;
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    CivilTime {
        year,
        month,
        day,
        hour: second_of_day / 3600,
        minute: second_of_day / 60 % 60,
        second: second_of_day % 60,
        micros: fraction,
    }
}

fn push_date_and_time(buffer: &mut Vec<u8>, time: &CivilTime, time_separator: u8) {
    push_u64(buffer, time.year.max(0) as u64);
    buffer.push(b'-');
    push_two(buffer, time.month);
    buffer.push(b'-');
    push_two(buffer, time.day);
    buffer.push(b'T');
    push_two(buffer, time.hour);
    buffer.push(time_separator);
    push_two(buffer, time.minute);
    buffer.push(time_separator);
    push_two(buffer, time.second);
}

/// Appends `"2026-11-27T09:00:00.123456Z"` (with quotes), the API server's
/// `metav1.MicroTime` format.
pub(crate) fn push_micro_time(buffer: &mut Vec<u8>, micros: i64) {
    let time = civil_time(micros);
    buffer.push(b'"');
    push_date_and_time(buffer, &time, b':');
    buffer.push(b'.');
    let mut fraction = time.micros;
    let mut digits = [b'0'; 6];
    for index in (0..6).rev() {
        digits[index] = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    buffer.extend_from_slice(&digits);
    buffer.extend_from_slice(b"Z\"");
}

/// `2026-11-27T09:00:00Z`: RFC 3339 at second precision (object metadata).
pub(crate) fn rfc3339_seconds(micros: i64) -> String {
    let mut buffer = Vec::with_capacity(20);
    push_date_and_time(&mut buffer, &civil_time(micros), b':');
    buffer.push(b'Z');
    String::from_utf8(buffer).unwrap_or_default()
}

/// `2026-11-27T09:00:00.123456Z` without quotes (labels files).
pub(crate) fn rfc3339_micros(micros: i64) -> String {
    let mut buffer = Vec::with_capacity(30);
    push_micro_time(&mut buffer, micros);
    String::from_utf8(buffer[1..buffer.len() - 1].to_vec()).unwrap_or_default()
}

/// `2026-11-27T09-00-00.000`: lumberjack's backup timestamp (UTC, milliseconds).
pub(crate) fn backup_timestamp(micros: i64) -> String {
    let time = civil_time(micros);
    let mut buffer = Vec::with_capacity(24);
    push_date_and_time(&mut buffer, &time, b'-');
    buffer.push(b'.');
    let millis = time.micros / 1000;
    buffer.push(b'0' + (millis / 100) as u8);
    push_two(&mut buffer, millis % 100);
    String::from_utf8(buffer).unwrap_or_default()
}

/// A random (version 4) UUID, drawn from the simulator's seeded generator.
pub(crate) fn uuid(rng: &mut impl Rng) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = [b'-'; 36];
    let mut position = 0;
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            position += 1;
        }
        text[position] = HEX[(byte >> 4) as usize];
        text[position + 1] = HEX[(byte & 15) as usize];
        position += 2;
    }
    text
}

pub(crate) fn uuid_string(rng: &mut impl Rng) -> String {
    String::from_utf8_lossy(&uuid(rng)).into_owned()
}

/// Lower-case alphanumerics as Kubernetes uses for generated name suffixes.
pub(crate) fn name_suffix(rng: &mut impl Rng, length: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..length)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn formats_times_like_the_api_server() {
        // 2026-11-27T09:00:00.000123Z
        let micros = 1_795_770_000_000_123;
        let mut buffer = Vec::new();
        push_micro_time(&mut buffer, micros);
        assert_eq!(
            std::str::from_utf8(&buffer).expect("utf8"),
            "\"2026-11-27T09:00:00.000123Z\""
        );
        assert_eq!(backup_timestamp(micros + 45_000), "2026-11-27T09-00-00.045");
        assert_eq!(rfc3339_seconds(micros), "2026-11-27T09:00:00Z");
        assert_eq!(
            crate::audit::parse_rfc3339_micros(&rfc3339_micros(micros)),
            Some(micros)
        );
    }

    #[test]
    fn escapes_strings_so_serde_reads_them_back() {
        let text = "a\"b\\c\n<d>&\u{1}é";
        let literal = quoted(text);
        let back: String = serde_json::from_str(&literal).expect("valid JSON");
        assert_eq!(back, text);
    }

    #[test]
    fn uuids_are_version_4_and_seeded() {
        let mut first = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut second = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let id = uuid_string(&mut first);
        assert_eq!(id, uuid_string(&mut second));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(uuid::Uuid::parse_str(&id).is_ok());
    }
}
