#!/usr/bin/env node
// Builds the native backend's addon (native/) from source with node-gyp. Run by `npm install` /
// `npm ci` as this package's install script, where it must never fail the install: on any problem it
// writes the reason to native/build-error.txt (which `alignflow doctor` shows) and exits 0, and
// alignflow runs on the wasm backend. `npm run build:native` runs it with --strict (exit 1 on
// failure, full compiler output). Nothing is downloaded except, when this Node has no headers
// installed beside it, node-gyp's usual fetch of the Node headers.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'native');
const errorFile = path.join(nativeDir, 'build-error.txt');
const addon = path.join(nativeDir, 'build/Release/alignflow_native.node');
const strict = process.argv.includes('--strict');
const FIX = 'apt-get install g++ make python3 libopenblas-dev, then npm run build:native';

function fail(reason, detail = '') {
  writeFileSync(errorFile, `${reason}\n${detail}`.trimEnd() + '\n');
  const msg = `alignflow: native backend not built: ${reason}. alignflow will use the wasm backend. To enable native: ${FIX}`;
  if (strict) {
    if (detail) process.stderr.write(detail.trimEnd() + '\n');
    process.stderr.write(msg + '\n');
    process.exit(1);
  }
  process.stderr.write(msg + '\n');
  process.exit(0);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...opts });
}

if (process.env.ALIGNFLOW_SKIP_NATIVE === '1' && !strict) fail('skipped (ALIGNFLOW_SKIP_NATIVE=1)');
if (!existsSync(path.join(nativeDir, 'binding.gyp'))) fail('native/binding.gyp is missing');

const cxx = process.env.CXX || 'g++';
if (run(cxx, ['--version']).status !== 0) fail(`no C++ compiler (${cxx})`);
if (run('make', ['--version']).status !== 0) fail('no make');
if (run('python3', ['--version']).status !== 0) fail('no python3 (node-gyp needs it)');

// A CBLAS to link: the user's choice, else OpenBLAS, else a generic libblas/libcblas that has cblas_sgemm.
function linksCblas(libs) {
  const dir = mkdtempSync(path.join(tmpdir(), 'alignflow-cblas-'));
  try {
    const src = path.join(dir, 't.cc');
    writeFileSync(src, 'extern "C" void cblas_sgemm(int,int,int,int,int,int,float,const float*,int,const float*,int,float,float*,int);\nint main(){float a=1,b=2,c=0;cblas_sgemm(101,111,111,1,1,1,1.f,&a,1,&b,1,0.f,&c,1);return c==2.f?0:1;}\n');
    const r = run(cxx, [src, '-o', path.join(dir, 't'), ...libs.split(/\s+/).filter(Boolean)]);
    return r.status === 0 && run(path.join(dir, 't'), []).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const candidates = process.env.ALIGNFLOW_CBLAS_LIBS ? [process.env.ALIGNFLOW_CBLAS_LIBS] : ['-lopenblas', '-lmkl_rt', '-lcblas', '-lblas'];
const blas = candidates.find(linksCblas);
if (!blas) fail(`no CBLAS library found (tried ${candidates.join(', ')})`);

// node-gyp: the one npm hands its scripts, else the one bundled with npm, else on PATH
const npmGyp = process.env.npm_execpath ? path.join(path.dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js') : '';
const gypCandidates = [process.env.npm_config_node_gyp, npmGyp, path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].filter((p) => p && existsSync(p));
const gyp = gypCandidates.length ? [process.execPath, gypCandidates[0]] : ['node-gyp'];
const args = [...gyp.slice(1), 'rebuild'];
// headers installed beside this Node (Debian's nodejs, the official tarball): no download needed
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (existsSync(path.join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
const env = { ...process.env, ALIGNFLOW_CBLAS_LIBS: blas };
const r = run(gyp[0], args, { cwd: nativeDir, env });
if (r.status !== 0) {
  const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').filter((l) => l.trim());
  fail(`node-gyp failed${r.error ? ` (${r.error.message})` : ''}`, out.slice(-25).join('\n'));
}
// load it and multiply once, in a child so a bad binary cannot take this process down
const check = run(process.execPath, ['-e', `const a=require(${JSON.stringify(addon)});a.setThreads(1);const o=new Float32Array(1);a.matmul(new Float32Array([3]),new Float32Array([4]),o,1,1,1,1,false,false,0,0);if(o[0]!==12)process.exit(3)`]);
if (check.status !== 0) {
  rmSync(addon, { force: true });
  fail('the built addon does not load or computes wrongly', `${check.stdout}\n${check.stderr}`);
}
rmSync(errorFile, { force: true });
process.stdout.write(`alignflow: native backend built (${blas})\n`);
