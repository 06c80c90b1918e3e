//! The layout checks: for every struct and union bindgen generated, its size and alignment and
//! the offset of every named field (through anonymous members), as gcc computes them with the
//! kernel's own module flags, asserted at compile time against what bindgen (clang) generated.
//! A mismatch fails this crate's build.
//!
//! The list comes from the generated bindings themselves (parsed with `syn`); how C spells each
//! type (`struct foo`, `union bar` or a typedef name) comes from bindgen's callbacks and the
//! declaration they point to. Types that
//! C cannot name (bindgen's `foo__bindgen_ty_1` for anonymous members) are checked through their
//! parent, forward declarations are skipped, and opaque types get size and alignment only.
//!
//! gcc compiles the subsystem header plus one `asm` statement per value to assembly (`-S`), the
//! way Kbuild's asm-offsets does; the values are read back from the `.s` file.

use bindgen::callbacks::{DiscoveredItem, DiscoveredItemId, ParseCallbacks, SourceLocation};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

/// A struct or union bindgen generated.
#[derive(Debug)]
struct Comp {
    /// Its Rust name.
    rust: String,
    /// `struct` or `union`.
    kind: &'static str,
    /// Its name in C: the tag, or for `typedef struct { ... } atomic_t;` the typedef name.
    name: Option<String>,
    /// Where clang saw it declared: (file, byte offset).
    location: Option<(String, usize)>,
}

/// Records the structs and unions bindgen generates (a [`ParseCallbacks`]).
#[derive(Debug)]
struct Recorder(Rc<RefCell<Vec<Comp>>>);

impl ParseCallbacks for Recorder {
    fn new_item_found(
        &self,
        _id: DiscoveredItemId,
        item: DiscoveredItem,
        location: Option<&SourceLocation>,
    ) {
        let (kind, name, rust) = match item {
            DiscoveredItem::Struct {
                original_name,
                final_name,
            } => ("struct", original_name, final_name),
            DiscoveredItem::Union {
                original_name,
                final_name,
            } => ("union", original_name, final_name),
            _ => return,
        };
        let location = location.and_then(|l| Some((l.file_name.clone()?, l.byte_offset)));
        self.0.borrow_mut().push(Comp {
            rust,
            kind,
            name,
            location,
        });
    }
}

/// How C spells the generated structs and unions, filled in while bindgen runs.
pub struct CNames(Rc<RefCell<Vec<Comp>>>);

impl CNames {
    /// The names and the callback to hand to bindgen.
    pub fn new() -> (CNames, Box<dyn ParseCallbacks>) {
        let comps = Rc::new(RefCell::new(Vec::new()));
        (CNames(comps.clone()), Box::new(Recorder(comps)))
    }

    /// Rust name → C spelling (`struct foo`, `union bar`, `atomic_t`), for every generated
    /// struct or union C can name.
    pub fn take(&self) -> BTreeMap<String, String> {
        let mut sources: HashMap<String, String> = HashMap::new();
        let mut names = BTreeMap::new();
        for comp in self.0.borrow().iter() {
            // bindgen's own names for anonymous members (`foo__bindgen_ty_1`): C has none.
            let Some(name) = &comp.name else { continue };
            // clang locates a tagged declaration at its tag, an anonymous one at its `struct`
            // keyword: then bindgen's name is the typedef's, and C spells it without `struct`.
            let anonymous = comp.location.as_ref().is_some_and(|(file, offset)| {
                let text = sources
                    .entry(file.clone())
                    .or_insert_with(|| std::fs::read_to_string(file).unwrap_or_default());
                let word = text.get(*offset..).unwrap_or_default();
                let end = word
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(word.len());
                word[..end] == *comp.kind
            });
            let c = if anonymous {
                name.clone()
            } else {
                format!("{} {name}", comp.kind)
            };
            names.insert(comp.rust.clone(), c);
        }
        names
    }
}

/// One value to compare: the Rust expression and the C expression for it.
pub struct Check {
    rust: String,
    c: String,
}

/// The checks for the generated `bindings` (Rust source), given how C names the types.
pub fn checks(bindings: &str, c_names: &BTreeMap<String, String>) -> Vec<Check> {
    let file = syn::parse_file(bindings).expect("parsing the generated bindings");
    // Every struct and union with named fields: field name → the field type's name, if a path.
    let mut fields: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for item in &file.items {
        let (ident, named) = match item {
            syn::Item::Struct(s) => match &s.fields {
                syn::Fields::Named(n) => (&s.ident, &n.named),
                _ => continue,
            },
            syn::Item::Union(u) => (&u.ident, &u.fields.named),
            _ => continue,
        };
        let list = named
            .iter()
            .map(|f| {
                let ty = match &f.ty {
                    syn::Type::Path(p) => p.path.segments.last().unwrap().ident.to_string(),
                    _ => String::new(),
                };
                (f.ident.as_ref().unwrap().to_string(), ty)
            })
            .collect();
        fields.insert(ident.to_string(), list);
    }

    let mut checks = Vec::new();
    for (rust, c) in c_names {
        let Some(list) = fields.get(rust) else {
            continue;
        };
        // A forward declaration (`_unused: [u8; 0]`; C knows no size either), or one that
        // bindgen could not tell from an empty struct (`_address: u8`; bindgen makes it 1 byte
        // where gcc says 0: any struct that contains one gets checked).
        if list.iter().any(|(f, _)| f == "_unused") || (list.len() == 1 && list[0].0 == "_address")
        {
            continue;
        }
        checks.push(Check {
            rust: format!("core::mem::size_of::<{rust}>()"),
            c: format!("sizeof({c})"),
        });
        checks.push(Check {
            rust: format!("core::mem::align_of::<{rust}>()"),
            c: format!("__alignof__({c})"),
        });
        offsets(rust, c, list, "", "", &fields, c_names, &mut checks);
    }
    checks
}

/// Prefixes of bindgen's own fields, which C does not have: bitfield units, padding, opaque
/// blobs, alignment markers, unions bindgen could not express as Rust unions.
const BINDGEN_FIELDS: &[&str] = &[
    "_bitfield",
    "_bindgen",
    "__bindgen",
    "bindgen_union_field",
    "_address",
];

/// Offset checks for the named fields in `list`, a member of `rust` reached by `rust_path` in
/// Rust and `c_path` in C (empty at the top, `__bindgen_anon_1.` / `` for anonymous members).
#[allow(clippy::too_many_arguments)]
fn offsets(
    rust: &str,
    c: &str,
    list: &[(String, String)],
    rust_path: &str,
    c_path: &str,
    fields: &HashMap<String, Vec<(String, String)>>,
    c_names: &BTreeMap<String, String>,
    checks: &mut Vec<Check>,
) {
    for (name, ty) in list {
        // Anonymous struct/union members: their fields are members of the parent in C.
        if name.starts_with("__bindgen_anon_") {
            if let Some(inner) = fields.get(ty) {
                let path = format!("{rust_path}{name}.");
                offsets(rust, c, inner, &path, c_path, fields, c_names, checks);
            }
            continue;
        }
        if BINDGEN_FIELDS.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let c_name = c_field_name(name);
        checks.push(Check {
            rust: format!("core::mem::offset_of!({rust}, {rust_path}{name})"),
            c: format!("offsetof({c}, {c_path}{c_name})"),
        });
        // A named member of an anonymous type (`struct { ... } foo;`): C reaches its fields as
        // `foo.bar`, and nothing else checks that type.
        if !c_names.contains_key(ty) {
            if let Some(inner) = fields.get(ty) {
                let (rp, cp) = (format!("{rust_path}{name}."), format!("{c_path}{c_name}."));
                offsets(rust, c, inner, &rp, &cp, fields, c_names, checks);
            }
        }
    }
}

/// The C name of a field: bindgen appends `_` to names that are Rust keywords or primitive
/// types (its `rust_mangle`).
fn c_field_name(rust: &str) -> &str {
    const MANGLED: &[&str] = &[
        "abstract", "alignof", "as", "async", "await", "become", "box", "break", "const",
        "continue", "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for",
        "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut",
        "offsetof", "override", "priv", "proc", "pub", "pure", "ref", "return", "Self", "self",
        "sizeof", "static", "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe",
        "unsized", "use", "virtual", "where", "while", "yield", "str", "bool", "f32", "f64",
        "usize", "isize", "u128", "i128", "u64", "i64", "u32", "i32", "u16", "i16", "u8", "i8",
        "_",
    ];
    match rust.strip_suffix('_') {
        Some(base) if MANGLED.contains(&base) => base,
        _ => rust,
    }
}

/// The values gcc computes for `checks`: `gcc_args` is the kernel's command line for a module
/// object (compiler first, one word per line), `header` the subsystem header.
pub fn gcc_values(gcc_args: &str, header: &Path, checks: &[Check], out_dir: &Path) -> Vec<u64> {
    let mut c = format!(
        "#include \"{}\"\n#include <linux/stddef.h>\n\n",
        header.display()
    );
    c += "#define L(i, val) asm volatile(\"\\n.ascii \\\"->\" #i \" %0\\\"\" : : \"i\" (val))\n\n";
    c += "void rust_layout(void)\n{\n";
    for (i, check) in checks.iter().enumerate() {
        c += &format!("\tL({i}, {});\n", check.c);
    }
    c += "}\n";
    let (source, asm) = (out_dir.join("layout.c"), out_dir.join("layout.s"));
    std::fs::write(&source, c).expect("writing layout.c");

    let words: Vec<&str> = gcc_args.lines().filter(|l| !l.is_empty()).collect();
    let out = Command::new(words[0])
        .args(&words[1..])
        .arg("-S")
        .arg("-o")
        .arg(&asm)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", words[0]));
    if !out.status.success() {
        panic!(
            "gcc failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let values = parse_asm(&std::fs::read_to_string(&asm).expect("reading layout.s"));
    (0..checks.len())
        .map(|i| {
            *values
                .get(&i)
                .unwrap_or_else(|| panic!("no value for `{}` in {}", checks[i].c, asm.display()))
        })
        .collect()
}

/// Reads `->index value` lines from gcc's assembly (immediates may carry `$` or `#`).
fn parse_asm(asm: &str) -> HashMap<usize, u64> {
    asm.lines()
        .filter_map(|l| l.trim().strip_prefix(".ascii \"->"))
        .filter_map(|l| {
            let (i, value) = l.trim_end_matches('"').split_once(' ')?;
            let value = value.trim_start_matches(['$', '#']).parse().ok()?;
            Some((i.parse().ok()?, value))
        })
        .collect()
}

/// `layout.rs`: one compile-time assertion per check.
pub fn assertions(checks: &[Check], values: &[u64]) -> String {
    let mut rs = format!(
        "// Generated by kernel-sys/build: {} layout checks, gcc's values against bindgen's.\n",
        checks.len()
    );
    for (check, value) in checks.iter().zip(values) {
        rs += &format!(
            "const _: () = assert!({} == {value}, \"layout differs from gcc: {} is {value}\");\n",
            check.rust, check.c
        );
    }
    rs
}
