// The report's document model and its two renderers: report.md and index.html
// read the same sections, so the two cannot disagree on a single number.
//
//   Section[] ─┬─► renderMarkdown ─► report.md
//              └─► renderHtml     ─► index.html (offline, PNGs inlined; folded sections in <details>)

import type { ReportFile } from '../types.js';

export type Inline = string | { strong: string } | { code: string } | { link: string; href: string };

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; content: Inline[] }
  | { kind: 'list'; items: Inline[][] }
  | { kind: 'table'; header: string[]; rows: string[][]; numeric: boolean[] } // numeric columns align right
  | { kind: 'figure'; file: ReportFile; caption: string; specPath: string | null };

/** A part of the report: its blocks start with its heading. */
export interface Section {
  id: string; // the HTML anchor, and where extra HTML sections can be inserted
  blocks: Block[];
  folded?: boolean; // index.html folds it in <details>, headed by its first heading
}

// ---------------------------------------------------------------- Markdown

/** Escapes what Markdown would read as markup; an underscore inside a word (val_accuracy) is left alone. */
function markdownText(text: string): string {
  return text.replace(/([\\*`<[\]])/g, '\\$1').replace(/(?<!\w)_|_(?!\w)/g, '\\_');
}

function markdownInline(content: Inline[]): string {
  return content
    .map((part) => {
      if (typeof part === 'string') return markdownText(part);
      if ('strong' in part) return `**${markdownText(part.strong)}**`;
      if ('code' in part) return `\`${part.code}\``;
      return `[${markdownText(part.link)}](${part.href})`;
    })
    .join('');
}

function markdownCell(text: string): string {
  return markdownText(text).replace(/\|/g, '\\|');
}

export function renderMarkdown(sections: Section[]): string {
  const out: string[] = [];
  for (const block of sections.flatMap((section) => section.blocks)) {
    switch (block.kind) {
      case 'heading':
        out.push(`${'#'.repeat(block.level)} ${markdownText(block.text)}`);
        break;
      case 'paragraph':
        out.push(markdownInline(block.content));
        break;
      case 'list':
        out.push(block.items.map((item) => `- ${markdownInline(item)}`).join('\n'));
        break;
      case 'table':
        out.push(
          [
            `| ${block.header.map(markdownCell).join(' | ')} |`,
            `| ${block.numeric.map((numeric) => (numeric ? '---:' : '---')).join(' | ')} |`,
            ...block.rows.map((row) => `| ${row.map(markdownCell).join(' | ')} |`),
          ].join('\n'),
        );
        break;
      case 'figure': {
        const spec = block.specPath ? ` ([Vega-Lite spec](${block.specPath}))` : '';
        out.push(`![${markdownText(block.caption)}](${block.file.path})\n\n*${markdownText(block.caption)}*${spec}`);
        break;
      }
    }
  }
  return `${out.join('\n\n')}\n`;
}

// ---------------------------------------------------------------- HTML

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function htmlInline(content: Inline[]): string {
  return content
    .map((part) => {
      if (typeof part === 'string') return escapeHtml(part);
      if ('strong' in part) return `<strong>${escapeHtml(part.strong)}</strong>`;
      if ('code' in part) return `<code>${escapeHtml(part.code)}</code>`;
      return `<a href="${escapeHtml(part.href)}">${escapeHtml(part.link)}</a>`;
    })
    .join('');
}

/** Width in pixels from a PNG's IHDR chunk, or null if the bytes are not a PNG. */
function pngWidth(data: Uint8Array): number | null {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (data.length < 24 || signature.some((byte, i) => data[i] !== byte)) return null;
  return ((data[16]! << 24) | (data[17]! << 16) | (data[18]! << 8) | data[19]!) >>> 0;
}

const HTML_STYLE = `
  :root { color-scheme: light; }
  body { margin: 0; background: #f6f7f9; color: #1f2328; font: 15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
  main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
  h1 { font-size: 28px; margin: 8px 0 12px; }
  h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
  h3 { font-size: 16px; margin: 22px 0 8px; }
  details { margin: 28px 0 0; border-top: 1px solid #d8dee4; }
  summary { cursor: pointer; }
  summary h2 { display: inline-block; margin: 12px 0 6px; border: 0; }
  .table-wrap { overflow-x: auto; margin: 8px 0 16px; }
  table { border-collapse: collapse; font-size: 13.5px; }
  th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; white-space: nowrap; }
  th { background: #f0f3f6; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  tbody tr:nth-child(even) { background: #fafbfc; }
  code { font: 13px "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f0f3f6; padding: 1px 4px; border-radius: 3px; }
  figure { margin: 16px 0 28px; }
  figure img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
  figcaption { color: #57606a; font-size: 13.5px; margin-top: 6px; }
`;

function htmlBlock(block: Block): string {
  switch (block.kind) {
    case 'heading':
      return `<h${block.level}>${escapeHtml(block.text)}</h${block.level}>`;
    case 'paragraph':
      return `<p>${htmlInline(block.content)}</p>`;
    case 'list':
      return `<ul>\n${block.items.map((item) => `  <li>${htmlInline(item)}</li>`).join('\n')}\n</ul>`;
    case 'table': {
      const cellClass = (i: number) => (block.numeric[i] ? ' class="num"' : '');
      const head = block.header.map((cell, i) => `<th${cellClass(i)}>${escapeHtml(cell)}</th>`).join('');
      const body = block.rows
        .map((row) => `    <tr>${row.map((cell, i) => `<td${cellClass(i)}>${escapeHtml(cell)}</td>`).join('')}</tr>`)
        .join('\n');
      return `<div class="table-wrap"><table>\n  <thead><tr>${head}</tr></thead>\n  <tbody>\n${body}\n  </tbody>\n</table></div>`;
    }
    case 'figure': {
      const width = pngWidth(block.file.data);
      // The PNGs are drawn at 2×; showing them at half width keeps text at its intended size.
      const size = width ? ` width="${Math.round(width / 2)}"` : '';
      const source = `data:image/png;base64,${Buffer.from(block.file.data).toString('base64')}`;
      const spec = block.specPath ? ` · <a href="${escapeHtml(block.specPath)}">Vega-Lite spec</a>` : '';
      return (
        `<figure>\n  <img src="${source}" alt="${escapeHtml(block.caption)}"${size}>\n` +
        `  <figcaption>${escapeHtml(block.caption)} · <a href="${escapeHtml(block.file.path)}">${escapeHtml(block.file.path)}</a>${spec}</figcaption>\n</figure>`
      );
    }
  }
}

/** A section as HTML: a <section>, or a <details> whose summary is the section's heading. */
function htmlSection(section: Section): string {
  const [first, ...others] = section.blocks;
  if (section.folded && first?.kind === 'heading') {
    return `<details id="${escapeHtml(section.id)}">\n<summary>${htmlBlock(first)}</summary>\n${others.map(htmlBlock).join('\n')}\n</details>`;
  }
  return `<section id="${escapeHtml(section.id)}">\n${section.blocks.map(htmlBlock).join('\n')}\n</section>`;
}

/**
 * index.html from the sections. `inserted` holds extra HTML blocks by the id
 * of the section they follow (e.g. a live panel after 'results').
 */
export function renderHtml(sections: Section[], title: string, inserted: Record<string, string[]> = {}): string {
  const out = sections.flatMap((section) => [htmlSection(section), ...(inserted[section.id] ?? [])]);
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${HTML_STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...out,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
