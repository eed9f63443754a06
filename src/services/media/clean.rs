//! What an upload is, decided by its bytes, and the copy of it that is stored: photos from
//! phones carry EXIF with the GPS position and the device, so a JPEG keeps only the
//! segments needed to show it (no EXIF/XMP, IPTC, comments, nor what follows its end
//! marker) and a PNG loses its `eXIf` and text chunks. GIF and PDF files are stored as
//! they come (their comments and document information stay). The pixels are copied as they are
//! (no re-encoding); a JPEG's EXIF orientation is kept, rewritten as a minimal EXIF
//! segment that holds nothing else, so the picture still shows the right way up.
//!
//! Both formats are walked segment by segment with small buffers: a 10 MiB photo never
//! sits whole in memory.

use std::io::{self, Read, Write};

/// The types the API accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Jpeg,
    Png,
    Gif,
    Pdf,
}

impl Kind {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Gif => "image/gif",
            Kind::Pdf => "application/pdf",
        }
    }
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The type of a file from its first bytes; `None` for anything else.
pub(crate) fn sniff(head: &[u8]) -> Option<Kind> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else if head.starts_with(&PNG_SIGNATURE) {
        Some(Kind::Png)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(Kind::Gif)
    } else if head.starts_with(b"%PDF-") {
        Some(Kind::Pdf)
    } else {
        None
    }
}

/// Copies `input` (a file of `kind`) to `output`, leaving out what can locate or identify
/// a person. An image whose structure is broken is refused (`InvalidData`) rather than
/// stored half-cleaned.
pub(crate) fn copy_clean(
    kind: Kind,
    input: &mut impl Read,
    output: &mut impl Write,
) -> io::Result<()> {
    match kind {
        Kind::Jpeg => jpeg(input, output),
        Kind::Png => png(input, output),
        Kind::Gif | Kind::Pdf => io::copy(input, output).map(|_| ()),
    }
}

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Whether a JPEG segment is needed to show the picture and says nothing about who took
/// it, where or with what: JFIF (APP0), ICC colour profiles (APP2, but not the MPF index
/// of further images), Adobe's colour transform (APP14), and the tables, frame and scan
/// headers. EXIF/XMP (APP1), the other APPn (IPTC in APP13, vendor data) and comments go.
fn keep_segment(marker: u8, body: &[u8]) -> bool {
    match marker {
        0xE0 | 0xEE => true,
        0xE2 => body.starts_with(b"ICC_PROFILE\0"),
        0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
        // DQT, DHT, DAC, DRI, SOFn, DNL, DHP, EXP: decoding data.
        _ => true,
    }
}

/// JPEG: SOI, then segments (`FF xx` + a 16-bit length), each start of scan followed by
/// entropy-coded data up to the next marker (progressive files have several scans with
/// tables between them), up to EOI. Whatever follows EOI (a second image, a phone's
/// trailer, a motion-photo video) is left out: it carries metadata of its own.
fn jpeg(input: &mut impl Read, output: &mut impl Write) -> io::Result<()> {
    let mut input = io::BufReader::new(input);
    let mut soi = [0u8; 2];
    input.read_exact(&mut soi)?;
    output.write_all(&soi)?;
    let mut pending: Option<u8> = None;
    loop {
        let marker = match pending.take() {
            Some(m) => m,
            None => {
                let mut m = [0u8; 2];
                input
                    .read_exact(&mut m)
                    .map_err(|_| broken("the JPEG ends before its end marker"))?;
                if m[0] != 0xFF {
                    return Err(broken("the JPEG's segments are broken"));
                }
                let mut code = m[1];
                // Fill bytes before a marker.
                while code == 0xFF {
                    let mut b = [0u8; 1];
                    input.read_exact(&mut b)?;
                    code = b[0];
                }
                code
            }
        };
        match marker {
            0xD9 => {
                output.write_all(&[0xFF, 0xD9])?;
                return Ok(());
            }
            // Markers without a length.
            0xD8 | 0x01 | 0xD0..=0xD7 => {
                output.write_all(&[0xFF, marker])?;
                continue;
            }
            _ => {}
        }
        let mut len = [0u8; 2];
        input.read_exact(&mut len)?;
        let len = u16::from_be_bytes(len);
        if len < 2 {
            return Err(broken("a JPEG segment has an impossible length"));
        }
        // At most 64 KiB: a segment may be read whole.
        let mut body = Vec::with_capacity(usize::from(len - 2));
        (&mut input)
            .take(u64::from(len - 2))
            .read_to_end(&mut body)?;
        if body.len() != usize::from(len - 2) {
            return Err(broken("a JPEG segment is cut short"));
        }
        if marker == 0xE1 && body.starts_with(b"Exif\0\0") {
            if let Some(orientation) = exif_orientation(&body[6..]).filter(|o| *o != 1) {
                output.write_all(&minimal_exif(orientation))?;
            }
            continue;
        }
        if !keep_segment(marker, &body) {
            continue;
        }
        output.write_all(&[0xFF, marker])?;
        output.write_all(&len.to_be_bytes())?;
        output.write_all(&body)?;
        if marker == 0xDA {
            pending = Some(copy_scan(&mut input, output)?);
        }
    }
}

/// Copies entropy-coded data (where `FF 00` is a data byte and `FF D0`–`FF D7` restart
/// markers) and returns the marker that ends it.
fn copy_scan(input: &mut impl io::BufRead, output: &mut impl Write) -> io::Result<u8> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Err(broken("the JPEG ends inside its image data"));
        }
        match buf.iter().position(|b| *b == 0xFF) {
            None => {
                let n = buf.len();
                output.write_all(buf)?;
                input.consume(n);
            }
            Some(at) => {
                output.write_all(&buf[..at])?;
                input.consume(at + 1);
                let mut next = [0u8; 1];
                input.read_exact(&mut next)?;
                // Fill bytes.
                while next[0] == 0xFF {
                    input.read_exact(&mut next)?;
                }
                match next[0] {
                    0x00 | 0xD0..=0xD7 => output.write_all(&[0xFF, next[0]])?,
                    marker => return Ok(marker),
                }
            }
        }
    }
}

/// The Orientation tag (0x0112) of IFD0 in a TIFF structure, if present and sane.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let little = match tiff.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count.min(512)).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3)
            .then(|| u16_at(entry + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

/// An APP1 segment whose EXIF holds the orientation and nothing else.
fn minimal_exif(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2A\0\0\0\x08"); // big-endian, IFD0 at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let len = u16::try_from(2 + 6 + tiff.len()).unwrap_or(u16::MAX);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&len.to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&tiff);
    seg
}

/// PNG chunks that can carry personal data: EXIF, and the three kinds of text (which
/// cameras and editors fill with authors, places and software).
const PNG_DROPPED: [&[u8; 4]; 4] = [b"eXIf", b"tEXt", b"zTXt", b"iTXt"];

/// PNG: the signature, then chunks (length, type, data, CRC) up to `IEND`.
fn png(input: &mut impl Read, output: &mut impl Write) -> io::Result<()> {
    let mut sig = [0u8; 8];
    input.read_exact(&mut sig)?;
    output.write_all(&sig)?;
    loop {
        let mut head = [0u8; 8];
        input
            .read_exact(&mut head)
            .map_err(|_| broken("the PNG ends before IEND"))?;
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        if len > 0x7FFF_FFFF {
            return Err(broken("a PNG chunk has an impossible length"));
        }
        let kind = [head[4], head[5], head[6], head[7]];
        let rest = len + 4; // data + CRC
        if PNG_DROPPED.iter().any(|d| **d == kind) {
            let skipped = io::copy(&mut input.take(rest), &mut io::sink())?;
            if skipped != rest {
                return Err(broken("a PNG chunk is cut short"));
            }
            continue;
        }
        output.write_all(&head)?;
        let copied = io::copy(&mut input.take(rest), output)?;
        if copied != rest {
            return Err(broken("a PNG chunk is cut short"));
        }
        if &kind == b"IEND" {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG skeleton: SOI, APP1 EXIF (with orientation 6 and a GPS-looking payload),
    /// APP1 XMP, a DQT, SOS with data, EOI.
    fn jpeg_with_exif() -> Vec<u8> {
        let mut tiff = b"II\x2A\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&6u16.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0x8825u16.to_le_bytes()); // GPS IFD pointer
        tiff.extend_from_slice(&4u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(b"GPS 48.8566N 2.3522E");
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(&tiff);
        let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>secret place</x:xmpmeta>".to_vec();
        let mut out = vec![0xFF, 0xD8];
        for body in [&exif, &xmp] {
            out.extend_from_slice(&[0xFF, 0xE1]);
            out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(body);
        }
        out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]);
        out.extend_from_slice(&[0xFF, 0xED, 0x00, 0x09]);
        out.extend_from_slice(b"IPTC:Ly");
        out.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x07]);
        out.extend_from_slice(b"Lyon!");
        out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x00]);
        out.extend_from_slice(&[0x11, 0x22, 0xFF, 0x00, 0x33, 0xFF, 0xD0, 0x44]);
        // A second scan after new tables, as progressive files have.
        out.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x03, 0x07]);
        out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x01, 0x55, 0xFF, 0xD9]);
        // A trailer after EOI (a phone's second image with its own EXIF).
        out.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06]);
        out.extend_from_slice(b"GPS!");
        out
    }

    fn cleaned(kind: Kind, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        copy_clean(kind, &mut &bytes[..], &mut out)?;
        Ok(out)
    }

    #[test]
    fn jpeg_loses_exif_and_xmp_but_keeps_orientation_and_pixels() {
        let out = cleaned(Kind::Jpeg, &jpeg_with_exif()).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(
            !text.contains("GPS") && !text.contains("secret place"),
            "{text}"
        );
        assert!(!text.contains("IPTC") && !text.contains("Lyon"), "{text}");
        // Both scans (with restart markers and stuffed bytes) and the tables between them
        // are kept as they are; what follows EOI is not.
        assert!(out.ends_with(&[
            0xFF, 0xDA, 0x00, 0x03, 0x00, 0x11, 0x22, 0xFF, 0x00, 0x33, 0xFF, 0xD0, 0x44, 0xFF,
            0xC4, 0x00, 0x03, 0x07, 0xFF, 0xDA, 0x00, 0x03, 0x01, 0x55, 0xFF, 0xD9
        ]));
        let app1 = out
            .windows(6)
            .position(|w| w == b"Exif\0\0")
            .expect("a minimal EXIF");
        assert_eq!(exif_orientation(&out[app1 + 6..]), Some(6));
        // Cleaning twice changes nothing more.
        assert_eq!(cleaned(Kind::Jpeg, &out).unwrap(), out);
    }

    #[test]
    fn png_loses_exif_and_text_chunks() {
        let chunk = |kind: &[u8; 4], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend_from_slice(&[0, 0, 0, 0]);
            c
        };
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        png.extend(chunk(b"tEXt", b"Author\0Ana at home"));
        png.extend(chunk(b"eXIf", b"MM\0\x2AGPS"));
        png.extend(chunk(b"IDAT", &[1, 2, 3]));
        png.extend(chunk(b"iTXt", b"Location\0\0\0\0\0Paris"));
        png.extend(chunk(b"IEND", &[]));
        let out = cleaned(Kind::Png, &png).unwrap();
        let mut expected = PNG_SIGNATURE.to_vec();
        expected.extend(chunk(b"IHDR", &[0; 13]));
        expected.extend(chunk(b"IDAT", &[1, 2, 3]));
        expected.extend(chunk(b"IEND", &[]));
        assert_eq!(out, expected);
    }

    #[test]
    fn broken_images_are_refused() {
        let mut cut = jpeg_with_exif();
        cut.truncate(12);
        assert!(cleaned(Kind::Jpeg, &cut).is_err());
        assert!(cleaned(Kind::Png, &PNG_SIGNATURE).is_err());
    }

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(sniff(&PNG_SIGNATURE), Some(Kind::Png));
        assert_eq!(sniff(b"GIF89a.."), Some(Kind::Gif));
        assert_eq!(sniff(b"%PDF-1.7"), Some(Kind::Pdf));
        assert_eq!(sniff(b"MZ\x90\0"), None);
        assert_eq!(sniff(b""), None);
    }
}
