// --json and --html: the report written to files, for the CLI and the CI test alike.

import { writeFile } from "node:fs/promises";
import { renderHtmlReport } from "./report-html.js";
import type { LoadTestReport } from "./report.js";

export async function writeReportFiles(
  report: LoadTestReport,
  files: { jsonFile?: string; htmlFile?: string },
): Promise<void> {
  if (files.jsonFile) await writeFile(files.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  if (files.htmlFile) await writeFile(files.htmlFile, renderHtmlReport(report));
}
