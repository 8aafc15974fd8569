//! What the rewriter must know about HTML beyond what lol_html tells it: the text an
//! attribute value stands for ([`charref`]), and where in the tokenizer's states the bytes
//! seen so far leave a browser ([`lexer`]).

pub(super) mod charref;
pub(super) mod lexer;
mod text;
