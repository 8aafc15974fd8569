//! The lexer against documents whose end state is known.

use super::*;

fn lexed(html: &str) -> Lexer {
    let mut lexer = Lexer::default();
    lexer.feed(html.as_bytes());
    lexer
}

#[test]
fn documents_that_end_in_text() {
    for html in [
        "",
        "<p>x",
        "<!DOCTYPE html><title>a</b></title ><p>a &amp b &",
        "<!-- c --><!----><!--><!---><!-- a--!> <?xml x?><!> </> a < b <3",
        "<script>if (a<b) x('</scr'+'ipt>')</script>",
        "<script><!-- a --></script><script><!--<script>x</script>--></script>",
        "<style>a{}</STYLE><textarea>x</textarea\n><xmp><p></xmp>",
        "<a href='x>' b=\"y'\" c=d/e>t",
        "<template><p></template><br/>",
        "<!DOCTYPE html PUBLIC \"a>",
    ] {
        assert!(lexed(html).at_text(), "{html:?}");
    }
}

#[test]
fn documents_that_end_inside_markup() {
    for html in [
        "<img src='http://x/?x=",
        "<img src=\"a",
        "<img src=",
        "<img src=a",
        "<img src",
        "<img ",
        "<img",
        "<img/",
        "<",
        "</",
        "</p",
        "<!",
        "<!-",
        "<!-- x",
        "<!-- x --",
        "<!DOCTYPE html",
        "<?xml",
        "<script>x",
        "<script>a</scrip",
        "<script>a</script",
        "<script><!--<script>x</script>",
        "<script><!--<script>x</script>-->",
        "<style>",
        "<title>x</titl",
        "<title>x</titlex>",
        "<textarea>",
        "<xmp>",
        "<iframe>",
        "<noembed>",
        "<noframes>",
        "<noscript>",
        "<plaintext></plaintext><p>",
        "<template><p>",
        "<svg></svg><p>",
        "<math>",
    ] {
        assert!(!lexed(html).at_text(), "{html:?}");
    }
}

#[test]
fn script_text_and_script_sources_are_told_apart() {
    assert!(lexed("<script>window.").in_script());
    assert!(lexed("<script type=module><!--<script>").in_script());
    assert!(!lexed("<title>").in_script());
    assert!(!lexed("<script></script>").in_script());
    for html in [
        "<script async src=\"",
        "<SCRIPT SRC='//",
        "<script src=",
        "<script src=a",
    ] {
        assert!(lexed(html).in_script_src(), "{html:?}");
    }
    for html in [
        "<img src=\"",
        "<script data-src=\"",
        "<script srcx=\"",
        "<script>src=\"",
        "</script src=\"",
    ] {
        assert!(!lexed(html).in_script_src(), "{html:?}");
    }
}

proptest::proptest! {
    #[test]
    fn any_split_of_the_input_ends_in_the_same_state(
        html in "(<|>|/|!|-|'|\"|=| |a|<script>|</script>|<title>|</title|<svg>|<!--|-->)*",
        split in 0usize..200,
    ) {
        let whole = lexed(&html);
        let mut bytewise = Lexer::default();
        let (a, b) = html.as_bytes().split_at(split.min(html.len()));
        for part in [a, b] {
            for byte in part.chunks(1) {
                bytewise.feed(byte);
            }
        }
        proptest::prop_assert_eq!(whole.state, bytewise.state);
        proptest::prop_assert_eq!(whole.at_text(), bytewise.at_text());
    }
}

#[test]
fn feed_stops_where_lol_html_parts_from_a_browser() {
    for (html, at) in [
        ("<p><script async=>x", Some(18)),
        ("<title x= \t>", Some(12)),
        ("<TEXTAREA a=>", Some(13)),
        ("<plaintext a=>", Some(14)),
        // The same tag name with a value, an end tag, or an element whose text is markup
        // anyway: lol_html reads on as a browser does.
        ("<script async=\"\">x", None),
        ("<script async>x", None),
        ("<script a=b>x", None),
        ("<script></script a=>x", None),
        ("<p a=>x", None),
        ("<svg a=>x", None),
    ] {
        let mut lexer = Lexer::default();
        assert_eq!(lexer.feed(html.as_bytes()), at, "{html:?}");
    }
    // Across a chunk boundary, the offset is within the chunk that holds the `>`.
    let mut lexer = Lexer::default();
    assert_eq!(lexer.feed(b"<script async="), None);
    assert_eq!(lexer.feed(b" >x"), Some(2));
}
