// Validates the AsyncAPI document and the example payloads (run by asyncapi/check).
//
// 1. @asyncapi/parser parses posedge.yaml (resolving its $refs into ../schema and
//    ./examples) and runs its validation rules: any diagnostic of severity error fails.
// 2. Every message in components.messages is tied to its payload schema as written in the
//    document, and each of its examples is validated against that schema with Ajv in JSON
//    Schema draft 2020-12 mode (the dialect of schema/*.json), formats asserted.
// 3. Every file in examples/ must be some message's example, and every message with a
//    schema must have at least one: the contract and the payloads cannot drift apart.
//
// Usage: node validate.mjs [document] (default: posedge.yaml beside this file).

import { Parser, fromFile, DiagnosticSeverity } from '@asyncapi/parser';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import yaml from 'js-yaml';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const docPath = path.resolve(process.argv[2] ?? path.join(here, 'posedge.yaml'));
const docDir = path.dirname(docPath);
const schemaDir = path.resolve(here, '..', 'schema');
const exampleDir = path.join(here, 'examples');

let errors = 0;
const fail = (msg) => {
  errors += 1;
  console.error(`error: ${msg}`);
};

// --- 1. the document ---------------------------------------------------------------
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, docPath).parse();
const severity = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  const where = d.path?.length ? ` at ${d.path.join('.')}` : '';
  const line = `parser ${severity[d.severity] ?? d.severity} ${d.code}: ${d.message}${where}`;
  if (d.severity === DiagnosticSeverity.Error) {
    fail(line);
  } else {
    console.log(line);
  }
}
if (!document) {
  fail(`${path.relative(process.cwd(), docPath)}: not a valid AsyncAPI document`);
  process.exit(1);
}
console.log(
  `${path.basename(docPath)}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
    `${document.operations().length} operations, ${document.messages().length} messages, ` +
    `${diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).length} errors`,
);

// --- 2. the examples against their schemas -------------------------------------------
// Strict about unknown keywords and formats; not strictTypes, a style lint (it wants `type`
// beside every `pattern`) the generated event schema does not follow.
const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
addFormats(ajv);
// Formats schemars writes for Rust integers; asserted as ranges.
const ranges = {
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};
for (const [name, [lo, hi]] of Object.entries(ranges)) {
  ajv.addFormat(name, { type: 'number', validate: (n) => Number.isInteger(n) && n >= lo && n <= hi });
}
const schemaIds = new Map();
for (const file of fs.readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort()) {
  const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, file), 'utf8'));
  try {
    ajv.addSchema(schema);
    ajv.getSchema(schema.$id); // compile now: a broken schema fails here
    schemaIds.set(path.join(schemaDir, file), schema.$id);
  } catch (e) {
    fail(`schema/${file}: ${e.message}`);
  }
}

/// A copy of `value` whose file $refs (relative to the document) name the schemas' $ids.
function toIds(value) {
  if (Array.isArray(value)) return value.map(toIds);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) {
      const [file, fragment] = v.split('#');
      const id = schemaIds.get(path.resolve(docDir, file));
      if (!id) throw new Error(`$ref ${v} names no schema in schema/`);
      out[k] = fragment === undefined ? id : `${id}#${fragment}`;
    } else {
      out[k] = toIds(v);
    }
  }
  return out;
}

const raw = yaml.load(fs.readFileSync(docPath, 'utf8'));
const messages = raw?.components?.messages ?? {};
const used = new Set();
let validated = 0;
for (const [name, message] of Object.entries(messages)) {
  if (!message.payload) {
    fail(`message ${name}: no payload`);
    continue;
  }
  let validate;
  try {
    validate = ajv.compile(toIds(message.payload));
  } catch (e) {
    fail(`message ${name}: payload schema: ${e.message}`);
    continue;
  }
  const examples = message.examples ?? [];
  if (examples.length === 0) {
    fail(`message ${name}: no example payload`);
  }
  for (const ex of examples) {
    const ref = ex.payload?.$ref;
    if (typeof ref !== 'string') {
      fail(`message ${name}, example ${ex.name}: the payload must be a $ref to a file in examples/`);
      continue;
    }
    const file = path.resolve(docDir, ref);
    used.add(file);
    let payload;
    try {
      payload = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      fail(`message ${name}, example ${ref}: ${e.message}`);
      continue;
    }
    if (validate(payload)) {
      validated += 1;
      console.log(`ok: ${path.relative(here, file)} is a valid ${message.name ?? name}`);
    } else {
      for (const e of validate.errors) {
        fail(`${path.relative(here, file)} (${name}): ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
      }
    }
  }
}

// Files not tied to a message.
for (const file of fs.readdirSync(exampleDir).filter((f) => f.endsWith('.json')).sort()) {
  const full = path.join(exampleDir, file);
  if (used.has(full)) continue;
  fail(`examples/${file} is no message's example in ${path.basename(docPath)}`);
}

console.log(`${validated} example payloads validated, ${errors} errors`);
process.exit(errors === 0 ? 0 : 1);
