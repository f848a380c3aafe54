// Score one site with the MDN HTTP Observatory package itself, on chosen ports.
//
// The package's CLI takes a host name only and scans ports 80 and 443; its retriever
// takes the ports as options, so this runs the same retrieval and the same aggregation as
// src/scanner/index.js (scan()), with httpPort and httpsPort given.
// Usage: node observatory_scan.mjs PACKAGE_DIR HOST HTTP_PORT HTTPS_PORT
import path from "node:path";
import { pathToFileURL } from "node:url";

const [packageDir, hostname, httpPort, httpsPort] = process.argv.slice(2);
const load = (file) => import(pathToFileURL(path.join(packageDir, file)).href);
const { retrieve } = await load("src/retriever/retriever.js");
const { ALL_TESTS, ALGORITHM_VERSION } = await load("src/constants.js");
const grader = await load("src/grader/grader.js");
const { MINIMUM_SCORE_FOR_EXTRA_CREDIT } = await load("src/grader/charts.js");

const r = await retrieve(hostname, { httpPort, httpsPort });
if (!r.responses.auto) {
  console.log(JSON.stringify({ error: "down" }));
  process.exit(0);
}
const results = ALL_TESTS.map((test) => test(r));
let withCredit = 100;
let uncurved = 100;
const tests = {};
for (const result of results) {
  const modifier = grader.getScoreModifier(result.result);
  withCredit += modifier;
  if (modifier < 0) uncurved += modifier;
  tests[result.constructor.name] = { result: result.result, pass: result.pass, modifier };
}
const score = uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? withCredit : uncurved;
const final = grader.getGradeForScore(score);
console.log(
  JSON.stringify({
    algorithm_version: ALGORITHM_VERSION,
    score: final.score,
    grade: final.grade,
    status: r.responses.auto.status,
    tests,
  })
);
