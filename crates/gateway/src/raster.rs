//! SVG to PNG for the charts that chat tools and newsrooms embed (`…/chart.png`): Slack and
//! Teams show a PNG in a message but not an SVG, and many CMSs take only bitmaps.
//!
//! Why `resvg` (pure Rust, maintained by the linebender project, built with its `text`
//! feature only): no system library and no font on the machine are needed, so the image is
//! the same on every host. Its text is drawn with the one font embedded here
//! (`assets/DejaVuSans-subset.ttf`: DejaVu Sans cut down to Latin-1 and some punctuation,
//! licence beside it), loaded once.

use std::sync::{Arc, LazyLock};

use resvg::{tiny_skia, usvg};

/// DejaVu Sans, Basic Latin, Latin-1 and a few punctuation marks (22 KB).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// The family name in [`FONT`], which the charts' stylesheet names first.
const FAMILY: &str = "DejaVu Sans";

/// A PNG is drawn at this many pixels per SVG unit: twice the drawing's size, sharp on
/// high-density screens and in chat previews, which scale it down.
pub(crate) const SCALE: f32 = 2.0;

/// The parsing options with the embedded font, built once: loading the font database per
/// request would cost more than the drawing.
static OPTIONS: LazyLock<usvg::Options<'static>> = LazyLock::new(|| {
    let mut fonts = usvg::fontdb::Database::new();
    fonts.load_font_data(FONT.to_vec());
    usvg::Options {
        font_family: FAMILY.to_string(),
        fontdb: Arc::new(fonts),
        ..usvg::Options::default()
    }
});

/// `svg` drawn as a PNG at [`SCALE`] times its own size.
pub(crate) fn png(svg: &str) -> Result<Vec<u8>, String> {
    let tree = usvg::Tree::from_str(svg, &OPTIONS).map_err(|e| format!("the SVG: {e}"))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(SCALE)
        .ok_or("the chart has no size")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("no {}x{} image", size.width(), size.height()))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| format!("PNG encoding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels (RGBA) of a PNG, by decoding it with tiny-skia.
    fn pixels(png: &[u8]) -> tiny_skia::Pixmap {
        tiny_skia::Pixmap::decode_png(png).expect("a PNG")
    }

    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        let blank = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><rect width="200" height="40" fill="#fff"/></svg>"##;
        let text = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><rect width="200" height="40" fill="#fff"/><text x="4" y="28" style="font-family: 'DejaVu Sans'; font-size: 20px" fill="#000">3,765 in 2024-Q3</text></svg>"##;
        let dark = |png: &[u8]| {
            pixels(png)
                .pixels()
                .iter()
                .filter(|p| p.red() < 100)
                .count()
        };
        let (blank, text) = (png(blank).unwrap(), png(text).unwrap());
        assert_eq!(&text[..8], b"\x89PNG\r\n\x1a\n");
        let image = pixels(&text);
        assert_eq!((image.width(), image.height()), (400, 80));
        assert_eq!(dark(&blank), 0);
        // The glyphs cover a good share of the 400x80 pixels (none without a font).
        assert!(dark(&text) > 1500, "{} dark pixels", dark(&text));
    }

    #[test]
    fn a_broken_svg_is_an_error_not_a_panic() {
        assert!(png("<svg").is_err());
        assert!(png("not svg at all").is_err());
    }
}
