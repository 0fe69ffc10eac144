//! UringMachine::HTTP::Parser: HTTP/1.x request heads and chunk sizes parsed by the `httparse`
//! crate, for the Rack server (lib/uring_machine/rack/). Only parsing lives here: reading,
//! bodies, limits on time and the response are the server's Ruby. Uses ruby/ only.
mod chunk;
mod env_key;
mod errors;
mod parser;
mod request;

use magnus::{function, method, prelude::*, Error, RModule, Ruby};

use parser::Parser;

/// Defines UringMachine::HTTP, its Parser and its error classes.
pub fn define(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let http = module.define_module("HTTP")?;
    errors::define(ruby, http)?;
    let class = http.define_class("Parser", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", function!(Parser::rb_new, -1))?;
    class.define_method("parse_request", method!(Parser::rb_parse_request, -1))?;
    class.define_method("parse_chunk_size", method!(Parser::rb_parse_chunk_size, -1))?;
    class.define_method("max_request_line", method!(Parser::rb_max_request_line, 0))?;
    class.define_method("max_head_bytes", method!(Parser::rb_max_head_bytes, 0))?;
    class.define_method("max_headers", method!(Parser::rb_max_headers, 0))?;
    Ok(())
}
