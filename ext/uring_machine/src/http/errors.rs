//! The exceptions a request head can raise, one class per answer the server gives: ParseError
//! (400 Bad Request) and its subclasses RequestLineTooLong (414) and HeadTooLarge (431, also
//! for too many header fields).
use magnus::{prelude::*, value::Lazy, Error, ExceptionClass, RModule, Ruby};

fn http_class(ruby: &Ruby, name: &str) -> ExceptionClass {
    let module: RModule = ruby
        .class_object()
        .const_get::<_, RModule>("UringMachine")
        .and_then(|m| m.const_get("HTTP"))
        .expect("UringMachine::HTTP defined");
    module.const_get(name).expect("UringMachine::HTTP errors defined")
}

static PARSE_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| http_class(ruby, "ParseError"));
static REQUEST_LINE_TOO_LONG: Lazy<ExceptionClass> = Lazy::new(|ruby| http_class(ruby, "RequestLineTooLong"));
static HEAD_TOO_LARGE: Lazy<ExceptionClass> = Lazy::new(|ruby| http_class(ruby, "HeadTooLarge"));

/// Defines the classes and looks them up once, at load: a program that removes a constant
/// later must not make the first lookup fail (and panic).
pub fn define(ruby: &Ruby, http: RModule) -> Result<(), Error> {
    let parse_error = http.define_class("ParseError", ruby.exception_standard_error().as_r_class())?;
    http.define_class("RequestLineTooLong", parse_error)?;
    http.define_class("HeadTooLarge", parse_error)?;
    for class in [&PARSE_ERROR, &REQUEST_LINE_TOO_LONG, &HEAD_TOO_LARGE] {
        Lazy::force(class, ruby);
    }
    Ok(())
}

/// What went wrong with a head, as the exception to raise.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    Invalid(String),
    RequestLineTooLong(usize),
    HeadTooLarge(usize),
    TooManyHeaders(usize),
}

impl HeadError {
    pub fn into_error(self) -> Error {
        let ruby = crate::ruby::value::ruby();
        match self {
            HeadError::Invalid(what) => Error::new(ruby.get_inner(&PARSE_ERROR), what),
            HeadError::RequestLineTooLong(max) => Error::new(
                ruby.get_inner(&REQUEST_LINE_TOO_LONG),
                format!("request line longer than {max} bytes"),
            ),
            HeadError::HeadTooLarge(max) => Error::new(
                ruby.get_inner(&HEAD_TOO_LARGE),
                format!("request head larger than {max} bytes"),
            ),
            HeadError::TooManyHeaders(max) => Error::new(
                ruby.get_inner(&HEAD_TOO_LARGE),
                format!("more than {max} header fields"),
            ),
        }
    }
}

/// The ParseError for a bad chunk-size line.
pub fn invalid_chunk(what: &str) -> Error {
    let ruby = crate::ruby::value::ruby();
    Error::new(ruby.get_inner(&PARSE_ERROR), format!("invalid chunk: {what}"))
}
