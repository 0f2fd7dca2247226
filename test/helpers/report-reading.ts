// Reading a built report back, as a reader would: a file of buildReport's output, a section of
// report.md or index.html, and its tables cell by cell (test/report.test.ts, test/compare.test.ts).

import type { ReportFile } from '../../pipeline/types.js';

/** A text file of a report's files, by its path in the folder. */
export function text(files: ReportFile[], path: string): string {
  const file = files.find((candidate) => candidate.path === path);
  if (!file) throw new Error(`buildReport made no ${path}; it made ${files.map((f) => f.path).join(', ')}`);
  return new TextDecoder().decode(file.data);
}

/** Section of report.md from its heading (level 1 or 2) to the next level-2 heading. */
export function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line === `# ${heading}` || line === `## ${heading}`);
  if (start < 0) throw new Error(`report.md has no section "${heading}"`);
  const end = lines.findIndex((line, i) => i > start && line.startsWith('## '));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** Section of index.html from its <h1> or <h2> to the next <h2>. */
export function htmlSection(html: string, heading: string): string {
  const start = Math.max(html.indexOf(`<h1>${heading}</h1>`), html.indexOf(`<h2>${heading}</h2>`));
  if (start < 0) throw new Error(`index.html has no section "${heading}"`);
  const end = html.indexOf('<h2>', start + 4);
  return html.slice(start, end < 0 ? undefined : end);
}

export const unescapeMarkdown = (text: string) => text.replace(/\\(.)/g, '$1');
export const unescapeHtml = (text: string) =>
  text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');

export interface Table {
  header: string[];
  rows: string[][];
}

/** The tables of a report.md section, each row split on its unescaped pipes. */
export function markdownTables(sectionText: string): Table[] {
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => unescapeMarkdown(cell.trim()));
  const tables: Table[] = [];
  let lines: string[] = [];
  for (const line of [...sectionText.split('\n'), '']) {
    if (line.startsWith('|')) {
      lines.push(line);
    } else if (lines.length > 0) {
      const [header, _separator, ...rows] = lines;
      tables.push({ header: cells(header!), rows: rows.map(cells) });
      lines = [];
    }
  }
  return tables;
}

/** The tables of an index.html section: the <th> texts and each body <tr>'s <td> texts (not <thead>). */
export function htmlTables(sectionHtml: string): Table[] {
  const texts = (html: string, tag: 'th' | 'td') =>
    [...html.matchAll(new RegExp(`<${tag}(?: [^>]*)?>(.*?)</${tag}>`, 'g'))].map((match) => unescapeHtml(match[1]!));
  return [...sectionHtml.matchAll(/<table>([\s\S]*?)<\/table>/g)].map(([, table]) => ({
    header: texts(table!, 'th'),
    rows: [...table!.matchAll(/<tr>(.*?)<\/tr>/g)].map((match) => texts(match[1]!, 'td')).filter((row) => row.length > 0),
  }));
}
