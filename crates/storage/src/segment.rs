//! Compressed hourly segments: JSON lines stored as a sequence of independent zstd frames
//! (`<hour>.jsonl.zst`).
//!
//! Each frame holds whole lines only and is appended in one write, so concatenated frames are one
//! valid zstd stream (`zstd -dc` reads a segment), a segment is readable while it is written, and
//! a crash can tear only the last frame. [`FrameLines`] yields the lines of complete frames and
//! reports a torn final frame instead of its partial content; [`complete_frames_len`] finds where
//! the last complete frame ends so that the writer can cut a torn tail before appending again.
//!
//! A frame is the unit of loss in a crash and of compression: zstd finds repeats only inside a
//! frame, so frames of a few hundred kilobytes compress ~6-7x on recorded events while a frame
//! per event would barely halve them. Writers therefore gather lines into a frame until
//! [`FRAME_TARGET_BYTES`] or [`FRAME_MAX_AGE`], whichever comes first.

use scalper_core::config::paths::{DataKind, Paths};
use scalper_core::domain::Symbol;
use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Extension of a compressed segment (after the hour key).
pub const ZST_SUFFIX: &str = ".jsonl.zst";
/// Extension of a plain segment.
pub const PLAIN_SUFFIX: &str = ".jsonl";
/// zstd level of recorded segments: measured on the demo, level 3 compresses recorded events
/// ~7x for a few percent of a core; higher levels gain little for much more CPU.
pub const LEVEL: i32 = 3;
/// Uncompressed bytes gathered before a frame is written (about a second of the whole linear
/// universe). zstd's window at level 3 is 1-2 MiB, so larger frames hardly compress better.
pub const FRAME_TARGET_BYTES: usize = 1 << 20;
/// Longest time lines wait in memory for their frame; bounds what a crash can lose (on top of
/// the store's queue) and how stale a segment read while written can be.
pub const FRAME_MAX_AGE: Duration = Duration::from_secs(1);
/// A frame decoding to more than this is treated as corrupt (writers stay far below), so a
/// damaged file cannot make a reader allocate without bound.
pub const MAX_FRAME_DECODED: usize = 256 << 20;

const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// True for the stream kinds stored as compressed segments (the input recording: by far the
/// largest stream).
pub fn is_compressed(kind: DataKind) -> bool {
    kind == DataKind::Raw
}

/// The hourly file the store appends `kind` records to: `<hour>.jsonl.zst` for compressed
/// kinds, `<hour>.jsonl` otherwise.
pub fn stream_file(paths: &Paths, kind: DataKind, symbol: Option<&Symbol>, hour_key: &str) -> PathBuf {
    let plain = paths.hourly_file(kind, symbol, hour_key);
    if is_compressed(kind) {
        let mut s = plain.into_os_string();
        s.push(".zst");
        PathBuf::from(s)
    } else {
        plain
    }
}

/// Hour key of a segment file name (`YYYY-MM-DDTHH.jsonl` or `.jsonl.zst`) and whether it is
/// compressed; `None` for other names.
pub fn split_segment_name(name: &str) -> Option<(&str, bool)> {
    if let Some(stem) = name.strip_suffix(ZST_SUFFIX) {
        Some((stem, true))
    } else {
        name.strip_suffix(PLAIN_SUFFIX).map(|s| (s, false))
    }
}

/// True when the file name is a compressed segment.
pub fn is_zst_path(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(ZST_SUFFIX))
}

/// Compresses `lines` (whole lines, each ending in `\n`) into one complete frame.
pub fn compress_frame(lines: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(lines, LEVEL)
}

/// A segment opened for reading line by line ([`BufRead`]): plain or compressed, chosen by the
/// file name.
pub struct SegmentReader {
    inner: Inner,
    /// File bytes already reported by [`SegmentReader::take_progress`].
    reported: u64,
    /// Bytes of the line last handed out by [`SegmentReader::next_line`] that still sit at the
    /// front of the inner buffer (consumed on the next read).
    pending: usize,
    /// A line that crossed the inner buffer's end, gathered here (empty when the last line sits
    /// in the inner buffer: `pending > 0` says which).
    spill: Vec<u8>,
}

enum Inner {
    Plain(std::io::BufReader<Counted>),
    Zst(FrameLines<File>),
}

/// A file that counts the bytes read from it.
struct Counted {
    f: File,
    n: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.f.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

impl SegmentReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> std::io::Result<SegmentReader> {
        let f = File::open(path)?;
        let inner = if is_zst_path(path) {
            Inner::Zst(FrameLines::new(f)?)
        } else {
            Inner::Plain(std::io::BufReader::with_capacity(1 << 20, Counted { f, n: 0 }))
        };
        Ok(SegmentReader { inner, reported: 0, pending: 0, spill: Vec::new() })
    }

    /// The buffered bytes not consumed yet, without reading.
    fn buffered(&self) -> &[u8] {
        match &self.inner {
            Inner::Plain(r) => r.buffer(),
            Inner::Zst(z) => &z.ready[z.ready_pos..],
        }
    }

    /// Consumes the line handed out last.
    fn settle(&mut self) {
        if self.pending > 0 {
            let n = std::mem::take(&mut self.pending);
            match &mut self.inner {
                Inner::Plain(r) => r.consume(n),
                Inner::Zst(z) => z.consume(n),
            }
        }
    }

    /// Reads the next line, `\n` included (a torn last line has none), and returns its length
    /// (0 at the end); [`SegmentReader::line`] then borrows it. Unlike
    /// [`BufRead::read_line`], the line is not copied out of the decoded buffer and not checked
    /// for UTF-8 here.
    pub fn next_line(&mut self) -> std::io::Result<usize> {
        self.settle();
        self.spill.clear();
        let avail = match &mut self.inner {
            Inner::Plain(r) => r.fill_buf()?,
            Inner::Zst(z) => z.fill_buf()?,
        };
        if avail.is_empty() {
            return Ok(0);
        }
        if let Some(i) = memchr::memchr(b'\n', avail) {
            self.pending = i + 1;
            return Ok(i + 1);
        }
        // The line continues past the buffer (or is a torn tail): gather it.
        match &mut self.inner {
            Inner::Plain(r) => r.read_until(b'\n', &mut self.spill),
            Inner::Zst(z) => z.read_until(b'\n', &mut self.spill),
        }
    }

    /// The line read by the last [`SegmentReader::next_line`].
    pub fn line(&self) -> &[u8] {
        if self.pending > 0 {
            &self.buffered()[..self.pending]
        } else {
            &self.spill
        }
    }

    /// Torn or corrupt frames met so far (always 0 for plain files, whose torn last line the
    /// caller sees as a line without `\n`).
    pub fn bad_frames(&self) -> u64 {
        match &self.inner {
            Inner::Plain(_) => 0,
            Inner::Zst(z) => z.bad_frames(),
        }
    }

    /// Bytes of the file (compressed bytes for `.zst`) consumed since the last call, for progress
    /// against the files' sizes.
    pub fn take_progress(&mut self) -> u64 {
        let pos = match &self.inner {
            Inner::Plain(r) => r.get_ref().n,
            Inner::Zst(z) => z.file_pos(),
        };
        let d = pos.saturating_sub(self.reported);
        self.reported = pos;
        d
    }
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for SegmentReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.settle();
        match &mut self.inner {
            Inner::Plain(r) => r.fill_buf(),
            Inner::Zst(z) => z.fill_buf(),
        }
    }
    fn consume(&mut self, amt: usize) {
        self.settle();
        match &mut self.inner {
            Inner::Plain(r) => r.consume(amt),
            Inner::Zst(z) => z.consume(amt),
        }
    }
}

/// Spare room made in the frame buffer before each decoding step, bytes.
const DECODE_STEP: usize = 1 << 17;

/// Decodes a sequence of zstd frames and hands out the bytes of complete frames only
/// ([`BufRead`]). A frame cut short by the end of the input (a crash while it was written) or
/// that fails to decode ends the stream and is counted in [`FrameLines::bad_frames`]; nothing of
/// it is handed out.
pub struct FrameLines<R: Read> {
    src: R,
    dec: zstd::stream::raw::Decoder<'static>,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    /// Decoded bytes of the frame being decoded.
    frame: Vec<u8>,
    /// Input consumed since the last complete frame (a frame is in progress).
    in_frame: bool,
    /// Complete frames' bytes ready to hand out, and how far they were consumed.
    ready: Vec<u8>,
    ready_pos: usize,
    consumed: u64,
    bad: u64,
    done: bool,
}

impl<R: Read> FrameLines<R> {
    /// A reader over `src`.
    pub fn new(src: R) -> std::io::Result<FrameLines<R>> {
        Ok(FrameLines {
            src,
            dec: zstd::stream::raw::Decoder::new()?,
            input: vec![0; 1 << 17],
            in_pos: 0,
            in_len: 0,
            frame: Vec::new(),
            in_frame: false,
            ready: Vec::new(),
            ready_pos: 0,
            consumed: 0,
            bad: 0,
            done: false,
        })
    }

    /// Torn or corrupt frames met (0 or 1: the first one ends the stream).
    pub fn bad_frames(&self) -> u64 {
        self.bad
    }

    /// Compressed bytes consumed so far.
    pub fn file_pos(&self) -> u64 {
        self.consumed
    }

    fn give_up(&mut self, why: &str) {
        tracing::warn!(offset = self.consumed, "{why}: the rest of the segment is skipped");
        self.bad += 1;
        self.done = true;
        self.frame.clear();
    }

    /// Decodes until one more frame is complete (true) or the input ends (false).
    fn next_frame(&mut self) -> std::io::Result<bool> {
        use zstd::stream::raw::Operation;
        let mut out_full = false;
        loop {
            if self.in_pos == self.in_len && !out_full {
                let n = match self.src.read(&mut self.input) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    if self.in_frame {
                        self.give_up("torn final zstd frame (crash while it was written)");
                    }
                    self.done = true;
                    return Ok(false);
                }
                self.in_pos = 0;
                self.in_len = n;
            }
            // Decoded straight into the frame's spare capacity (reused from frame to frame).
            self.frame.reserve(DECODE_STEP);
            let start = self.frame.len();
            let mut inp = zstd::stream::raw::InBuffer::around(&self.input[self.in_pos..self.in_len]);
            let mut out = zstd::stream::raw::OutBuffer::around_pos(&mut self.frame, start);
            let remaining = match self.dec.run(&mut inp, &mut out) {
                Ok(r) => r,
                Err(e) => {
                    self.give_up(&format!("corrupt zstd frame ({e})"));
                    return Ok(false);
                }
            };
            let (read, end, cap) = (inp.pos(), out.pos(), out.capacity());
            self.in_pos += read;
            self.consumed += read as u64;
            if read > 0 {
                self.in_frame = true;
            }
            if end > MAX_FRAME_DECODED {
                self.give_up("zstd frame decodes to more than a segment frame can hold");
                return Ok(false);
            }
            out_full = end == cap;
            if remaining == 0 && !out_full {
                self.in_frame = false;
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for FrameLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for FrameLines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.ready_pos == self.ready.len() && !self.done {
            if self.next_frame()? {
                std::mem::swap(&mut self.ready, &mut self.frame);
                self.frame.clear();
                self.ready_pos = 0;
            }
        }
        Ok(&self.ready[self.ready_pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.ready_pos = (self.ready_pos + amt).min(self.ready.len());
    }
}

/// Length of the prefix of a segment made of complete zstd frames (skippable frames included):
/// where a writer may append the next frame after a crash tore the last one. Walks the frame and
/// block headers only, without decompressing.
pub fn complete_frames_len(f: &mut File, len: u64) -> std::io::Result<u64> {
    f.seek(SeekFrom::Start(0))?;
    let mut r = std::io::BufReader::with_capacity(8 << 10, &mut *f);
    let mut pos: u64 = 0;
    loop {
        match frame_len(&mut r, len - pos)? {
            Some(n) => pos += n,
            None => return Ok(pos),
        }
        if pos == len {
            return Ok(pos);
        }
    }
}

/// Size of the frame starting at the reader's position (which it leaves at the frame's end), or
/// `None` when the frame is incomplete or not a frame. `left` bytes remain in the file.
fn frame_len<F: Read + Seek>(r: &mut std::io::BufReader<F>, left: u64) -> std::io::Result<Option<u64>> {
    fn take<R: Read>(r: &mut R, buf: &mut [u8], used: &mut u64, left: u64) -> std::io::Result<bool> {
        if *used + buf.len() as u64 > left {
            return Ok(false);
        }
        r.read_exact(buf)?;
        *used += buf.len() as u64;
        Ok(true)
    }
    let mut used = 0u64;
    let mut b4 = [0u8; 4];
    if !take(r, &mut b4, &mut used, left)? {
        return Ok(None);
    }
    let magic = u32::from_le_bytes(b4);
    if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
        // Skippable frame: 4-byte size, then content.
        if !take(r, &mut b4, &mut used, left)? {
            return Ok(None);
        }
        let n = u64::from(u32::from_le_bytes(b4));
        if used + n > left {
            return Ok(None);
        }
        r.seek_relative(n as i64)?;
        return Ok(Some(used + n));
    }
    if magic != ZSTD_MAGIC {
        return Ok(None);
    }
    let mut d = [0u8; 1];
    if !take(r, &mut d, &mut used, left)? {
        return Ok(None);
    }
    let fhd = d[0];
    let single_segment = fhd & 0x20 != 0;
    let checksum = fhd & 0x04 != 0;
    let dict_len = [0u64, 1, 2, 4][(fhd & 0x03) as usize];
    let fcs_len = match fhd >> 6 {
        0 => u64::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let header_rest = u64::from(!single_segment) + dict_len + fcs_len;
    if used + header_rest > left {
        return Ok(None);
    }
    r.seek_relative(header_rest as i64)?;
    used += header_rest;
    let mut bh = [0u8; 3];
    loop {
        if !take(r, &mut bh, &mut used, left)? {
            return Ok(None);
        }
        let h = u32::from(bh[0]) | u32::from(bh[1]) << 8 | u32::from(bh[2]) << 16;
        let last = h & 1 != 0;
        let size = u64::from(h >> 3);
        let body = match (h >> 1) & 3 {
            0 | 2 => size,
            1 => 1,
            _ => return Ok(None),
        };
        if used + body > left {
            return Ok(None);
        }
        r.seek_relative(body as i64)?;
        used += body;
        if last {
            break;
        }
    }
    if checksum {
        if used + 4 > left {
            return Ok(None);
        }
        r.seek_relative(4)?;
        used += 4;
    }
    Ok(Some(used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(from: usize, to: usize) -> Vec<u8> {
        (from..to).map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "ab".repeat(i % 50))).collect::<String>().into()
    }

    fn read_all(bytes: &[u8]) -> (Vec<String>, u64) {
        let mut r = FrameLines::new(bytes).unwrap();
        let mut out = Vec::new();
        let mut l = String::new();
        while r.read_line(&mut l).unwrap() > 0 {
            out.push(std::mem::take(&mut l));
        }
        (out, r.bad_frames())
    }

    #[test]
    fn frames_read_back_as_one_stream_and_a_torn_last_frame_is_skipped() {
        let (a, b) = (lines(0, 3000), lines(3000, 3100));
        let mut file = compress_frame(&a).unwrap();
        let first = file.len();
        file.extend(compress_frame(&b).unwrap());
        // Whole: every line, in order; the standard decoder agrees (one valid zstd stream).
        let (got, bad) = read_all(&file);
        assert_eq!((got.len(), bad), (3100, 0));
        assert_eq!(got.concat().into_bytes(), [a.clone(), b.clone()].concat());
        assert_eq!(zstd::decode_all(&file[..]).unwrap(), [a.clone(), b].concat());
        // Torn anywhere inside the second frame: the first frame's lines, one bad frame.
        for cut in [first + 1, first + 5, file.len() - 1] {
            let (got, bad) = read_all(&file[..cut]);
            assert_eq!(got.concat().into_bytes(), a, "cut at {cut}");
            assert_eq!(bad, 1);
        }
        // Garbage after a frame: counted, earlier lines kept.
        let mut junk = compress_frame(&a).unwrap();
        junk.extend_from_slice(b"not zstd at all");
        let (got, bad) = read_all(&junk);
        assert_eq!((got.len(), bad), (3000, 1));
    }

    /// Every line [`SegmentReader::next_line`] hands out for `path`.
    fn next_lines(path: &Path) -> Vec<Vec<u8>> {
        let mut r = SegmentReader::open(path).unwrap();
        let mut out = Vec::new();
        while r.next_line().unwrap() > 0 {
            out.push(r.line().to_vec());
        }
        out
    }

    #[test]
    fn borrowed_lines_are_the_lines_read_line_gives_across_buffer_and_frame_ends() {
        let dir = tempfile::tempdir().unwrap();
        // Plain: more than the 1 MiB read buffer, so lines cross its end; a torn tail.
        let mut text = lines(0, 40_000);
        assert!(text.len() > 1 << 20);
        text.extend_from_slice(b"{\"torn\":");
        let plain = dir.path().join("p.jsonl");
        std::fs::write(&plain, &text).unwrap();
        // Compressed: the first frame ends inside a line that the second frame finishes.
        let (a, b) = (lines(0, 500), lines(500, 900));
        let split = a.len() - 7;
        let mut file = compress_frame(&a[..split]).unwrap();
        file.extend(compress_frame(&[&a[split..], &b[..]].concat()).unwrap());
        let zst = dir.path().join("z.jsonl.zst");
        std::fs::write(&zst, &file).unwrap();

        for (path, want) in [(&plain, text.clone()), (&zst, [a, b].concat())] {
            let mut expected = Vec::new();
            let mut r = SegmentReader::open(path).unwrap();
            loop {
                let mut l = Vec::new();
                if r.read_until(b'\n', &mut l).unwrap() == 0 {
                    break;
                }
                expected.push(l);
            }
            let got = next_lines(path);
            assert_eq!(got, expected, "{}", path.display());
            assert_eq!(got.concat(), want, "{}", path.display());
        }
        assert_eq!(next_lines(&plain).last().map(Vec::as_slice), Some(&b"{\"torn\":"[..]));
        // Reading on with BufRead after next_line continues after the borrowed line.
        let mut r = SegmentReader::open(&plain).unwrap();
        let first = r.next_line().unwrap();
        assert_eq!(r.line(), &text[..first]);
        let mut rest = String::new();
        r.read_line(&mut rest).unwrap();
        assert_eq!(rest.as_bytes(), next_lines(&plain)[1].as_slice());
    }

    #[test]
    fn the_complete_prefix_ends_after_the_last_whole_frame() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl.zst");
        let f1 = compress_frame(&lines(0, 2000)).unwrap();
        // A frame with a checksum and a big (multi-block) body, written by the streaming encoder.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_checksum(true).unwrap();
        let mut noisy = Vec::new();
        for i in 0..40_000u64 {
            writeln!(noisy, "{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).unwrap();
        }
        enc.write_all(&noisy).unwrap();
        let f2 = enc.finish().unwrap();
        let whole = [f1.clone(), f2.clone()].concat();
        for (cut, want) in [
            (whole.len(), whole.len()),
            (whole.len() - 1, f1.len()),
            (f1.len() + 3, f1.len()),
            (f1.len(), f1.len()),
            (f1.len() - 2, 0),
            (0, 0),
        ] {
            std::fs::write(&p, &whole[..cut]).unwrap();
            let mut f = File::open(&p).unwrap();
            assert_eq!(complete_frames_len(&mut f, cut as u64).unwrap(), want as u64, "cut {cut}");
        }
    }

    #[test]
    fn names_and_paths() {
        let paths = Paths::with_data_dir("/d");
        let p = stream_file(&paths, DataKind::Raw, None, "2026-01-01T05");
        assert!(p.ends_with("raw/_global/2026-01-01T05.jsonl.zst"));
        assert!(is_zst_path(&p));
        let p = stream_file(&paths, DataKind::Events, None, "2026-01-01T05");
        assert!(p.ends_with("events/_global/2026-01-01T05.jsonl"));
        assert_eq!(split_segment_name("2026-01-01T05.jsonl.zst"), Some(("2026-01-01T05", true)));
        assert_eq!(split_segment_name("2026-01-01T05.jsonl"), Some(("2026-01-01T05", false)));
        assert_eq!(split_segment_name("x.json"), None);
    }

    /// Events of a recording: a header and `n` one-second timers from `t0`.
    fn timers(from: u64, n: u64, t0: i64) -> Vec<scalper_core::engine::event::Event> {
        use scalper_core::engine::event::{Event, EventKind, TimerKind};
        (from..from + n)
            .map(|s| {
                Event::new(
                    s,
                    scalper_core::domain::EventTime::local(t0 + s as i64 * 10),
                    EventKind::Timer(TimerKind::Second),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn the_store_writes_the_recording_as_frames_that_decompress_to_its_lines() {
        use crate::json_store::{read_jsonl, Store};
        use scalper_control::monitoring::metrics::Metrics;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let m = std::sync::Arc::new(Metrics::new());
        let store = Store::start(paths.clone(), 1 << 12, 64, m.clone());
        let h = store.handle();
        let t0 = 1_767_225_600_000; // 2026-01-01T00
        let evs = timers(1, 500, t0);
        for (i, e) in evs.iter().enumerate() {
            h.append(DataKind::Raw, None, e.now_ms(), e).await.unwrap();
            if i % 100 == 99 {
                h.flush().await; // acknowledged: a whole frame is in the file
                let file = stream_file(&paths, DataKind::Raw, None, "2026-01-01T00");
                let (v, bad) = read_jsonl(&file).unwrap();
                assert_eq!((v.len(), bad), (i + 1, 0), "readable while written");
            }
        }
        // An event of the next hour starts a new segment.
        let late = timers(501, 1, t0 + 3_600_000);
        h.append(DataKind::Raw, None, late[0].now_ms(), &late[0]).await.unwrap();
        store.shutdown().await;
        let file = stream_file(&paths, DataKind::Raw, None, "2026-01-01T00");
        assert!(file.exists() && !paths.hourly_file(DataKind::Raw, None, "2026-01-01T00").exists());
        let want: String = evs.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), want.into_bytes(), "one valid zstd stream of the lines");
        assert!(bytes.len() < 500 * 20, "compressed: {} bytes for 500 events", bytes.len());
        let (v, bad) = read_jsonl(&stream_file(&paths, DataKind::Raw, None, "2026-01-01T01")).unwrap();
        assert_eq!((v.len(), bad), (1, 0));
        assert_eq!(m.storage_writes.with_label_values(&["raw"]).get(), 501);
    }

    #[tokio::test]
    async fn a_torn_frame_is_skipped_by_readers_and_cut_before_the_store_appends_again() {
        use crate::json_store::{read_jsonl, Store};
        use crate::replay::{Period, RecordingReader, ReplayItem};
        use scalper_control::monitoring::metrics::Metrics;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let t0 = 1_767_225_600_000;
        let cfg = std::sync::Arc::new(scalper_core::config::Config::default());
        let store = Store::start(paths.clone(), 1 << 12, 64, std::sync::Arc::new(Metrics::new()));
        let h = store.handle();
        let header = crate::recorder::Recorder::header(cfg, t0);
        h.append(DataKind::Raw, None, t0, &header).await.unwrap();
        for e in timers(1, 300, t0) {
            h.append(DataKind::Raw, None, e.now_ms(), &e).await.unwrap();
        }
        h.flush().await;
        let file = stream_file(&paths, DataKind::Raw, None, "2026-01-01T00");
        let first = std::fs::metadata(&file).unwrap().len();
        for e in timers(301, 300, t0) {
            h.append(DataKind::Raw, None, e.now_ms(), &e).await.unwrap();
        }
        store.shutdown().await;
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len > first + 8);
        // A crash in the middle of the second frame.
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(first + (len - first) / 2).unwrap();
        drop(f);

        let (items, st) = RecordingReader::open(&paths, Period::all()).unwrap().collect_all().unwrap();
        let seqs: Vec<u64> =
            items.iter().filter_map(|i| if let ReplayItem::Event(e) = i { Some(e.seq) } else { None }).collect();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>(), "every line of the whole frames, none of the torn one");
        assert_eq!(st.bad_lines, 1, "the torn frame counts as one bad line");
        assert!(st.has_gaps());
        assert_eq!(read_jsonl(&file).unwrap().1, 1);

        // The store cuts the torn frame before it appends: the file is whole again.
        let store = Store::start(paths.clone(), 1 << 12, 64, std::sync::Arc::new(Metrics::new()));
        let e = &timers(601, 1, t0)[0];
        store.handle().append(DataKind::Raw, None, e.now_ms(), e).await.unwrap();
        store.shutdown().await;
        let (v, bad) = read_jsonl(&file).unwrap();
        assert_eq!((v.len(), bad), (302, 0));
        assert_eq!(v.last().unwrap()["seq"], 601);
    }

    #[tokio::test]
    async fn a_frame_is_written_after_its_maximum_age_without_a_flush() {
        use crate::json_store::{read_jsonl, Store};
        use scalper_control::monitoring::metrics::Metrics;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let store = Store::start(paths.clone(), 1 << 12, 64, std::sync::Arc::new(Metrics::new()));
        let e = &timers(1, 1, 1_767_225_600_000)[0];
        store.handle().append(DataKind::Raw, None, e.now_ms(), e).await.unwrap();
        // Nothing else arrives: the writer's deadline alone must write the frame.
        let file = stream_file(&paths, DataKind::Raw, None, "2026-01-01T00");
        let mut seen = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = read_jsonl(&file).map(|(v, _)| v.len()).unwrap_or(0);
            if seen == 1 {
                break;
            }
        }
        assert_eq!(seen, 1, "the line reached the file without a flush or shutdown");
        store.shutdown().await;
    }
}
