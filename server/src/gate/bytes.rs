//! A cursor over untrusted bytes: every read is bounds-checked and every
//! count is checked against a limit before anything is allocated for it.

use automerge::ChangeHash;

/// Why bytes could not be read. The position lets a client author find the
/// byte that broke the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {at}: {what}")]
pub struct ReadError {
    pub at: usize,
    pub what: String,
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub fn position(&self) -> usize {
        self.at
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }

    pub fn fail<T>(&self, what: impl Into<String>) -> Result<T, ReadError> {
        Err(ReadError { at: self.at, what: what.into() })
    }

    pub fn byte(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1, "a byte")?[0])
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ReadError> {
        if n > self.remaining() {
            return self.fail(format!("{what}: {n} bytes announced, {} left", self.remaining()));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    /// An unsigned LEB128 number; more than 64 bits is an error, not a wrap.
    pub fn uleb(&mut self, what: &str) -> Result<u64, ReadError> {
        self.leb(what, leb128::read::unsigned)
    }

    pub fn sleb(&mut self, what: &str) -> Result<i64, ReadError> {
        self.leb(what, leb128::read::signed)
    }

    fn leb<T>(
        &mut self,
        what: &str,
        read: impl FnOnce(&mut &'a [u8]) -> Result<T, leb128::read::Error>,
    ) -> Result<T, ReadError> {
        let mut rest = &self.bytes[self.at..];
        let before = rest.len();
        match read(&mut rest) {
            Ok(n) => {
                self.at += before - rest.len();
                Ok(n)
            }
            Err(e) => self.fail(format!("{what}: {e}")),
        }
    }

    /// A count that must not exceed `max`.
    pub fn count(&mut self, what: &str, max: usize) -> Result<usize, ReadError> {
        let n = self.uleb(what)?;
        match usize::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => self.fail(format!("{what}: {n} is more than the {max} allowed")),
        }
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn prefixed(&mut self, what: &str, max: usize) -> Result<&'a [u8], ReadError> {
        let n = self.count(what, max)?;
        self.take(n, what)
    }

    /// A count-prefixed list of change hashes, at most `max` of them.
    pub fn hashes(&mut self, what: &str, max: usize) -> Result<Vec<ChangeHash>, ReadError> {
        let n = self.count(what, max)?;
        // The bytes must be there before the list is allocated.
        let raw = self.take(n * 32, what)?;
        Ok(raw.chunks_exact(32).map(|c| ChangeHash(c.try_into().unwrap_or([0; 32]))).collect())
    }
}

/// Appends `n` as unsigned LEB128.
pub fn put_uleb(out: &mut Vec<u8>, n: u64) {
    // Writing into a Vec cannot fail.
    let _ = leb128::write::unsigned(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_overlong_ones_fail() {
        for n in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_uleb(&mut out, n);
            assert_eq!(Reader::new(&out).uleb("n"), Ok(n));
        }
        // Eleven continuation bytes: more than 64 bits.
        let overlong = [0xff; 11];
        assert!(Reader::new(&overlong).uleb("n").is_err());
        assert!(Reader::new(&[0x80]).uleb("n").is_err(), "truncated");
    }

    #[test]
    fn counts_and_lengths_are_checked_before_use() {
        let mut out = Vec::new();
        put_uleb(&mut out, 1 << 40);
        assert!(Reader::new(&out).count("heads", 1024).is_err());
        let mut out = Vec::new();
        put_uleb(&mut out, 3);
        // Three hashes announced, none present: refused without allocating 96 bytes.
        assert!(Reader::new(&out).hashes("heads", 1024).is_err());
        assert!(Reader::new(&[5, 1, 2]).prefixed("bytes", 100).is_err());
        assert_eq!(Reader::new(&[2, 1, 2]).prefixed("bytes", 100), Ok(&[1u8, 2][..]));
    }
}
