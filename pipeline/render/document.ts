// The report's document model and its two renderers: report.md and index.html
// read the same sections, so the two cannot disagree on a single number.
//
//   Section[] ─┬─► renderMarkdown ─► report.md
//              └─► renderHtml     ─► index.html (offline, PNGs inlined; folded sections in <details>;
//                                   on a phone, tables stack or shrink and a tapped chart opens full size)

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

/** The screens that get the one-column layout: phones, and tablets held upright. Shared with the live panel's style. */
export const NARROW_SCREEN = '(max-width: 760px)';

const HTML_STYLE = `
  :root { color-scheme: light; }
  body { margin: 0; background: #f6f7f9; color: #1f2328; font: 15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
  main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
  h1 { font-size: 28px; margin: 8px 0 12px; }
  h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
  h3 { font-size: 16px; margin: 22px 0 8px; }
  main > details { margin: 28px 0 0; border-top: 1px solid #d8dee4; }
  summary { cursor: pointer; }
  summary h2 { display: inline-block; margin: 12px 0 6px; border: 0; }
  .table-wrap { overflow-x: auto; margin: 8px 0 16px; }
  table { border-collapse: collapse; font-size: 13.5px; }
  th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; }
  th, td.num { white-space: nowrap; }
  th { background: #f0f3f6; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  tbody tr:nth-child(even) { background: #fafbfc; }
  code { font: 13px "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f0f3f6; padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
  figure { margin: 16px 0 28px; }
  figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
  figcaption { color: #57606a; font-size: 13.5px; margin-top: 6px; }
  /* A chart opens full size on a tap, without a script: its <details> shows the same <img> over the page. */
  .zoom > summary { display: block; list-style: none; cursor: zoom-in; }
  .zoom > summary::-webkit-details-marker { display: none; }
  .zoom[open] > summary { position: fixed; inset: 0; z-index: 10; overflow: auto; overscroll-behavior: contain; padding: 44px 12px 12px; background: white; cursor: zoom-out; }
  .zoom[open] > summary::before { content: "Tap to close"; position: fixed; top: 8px; right: 12px; padding: 3px 12px; border: 1px solid #8c959f; border-radius: 6px; background: #f6f8fa; font-size: 14px; }
  .zoom[open] img { max-width: none; margin: 0 auto; }
  body:has(.zoom[open]) { overflow: hidden; }
  @media ${NARROW_SCREEN} {
    main { padding: 12px 14px 48px; }
    h1 { font-size: 24px; }
    pre { white-space: break-spaces; overflow-wrap: anywhere; }
    th { white-space: normal; }
    summary h2 { display: inline; }
    /* A wide table stacks: each row a card of "label: value" lines, the labels from data-label. */
    .stack table, .stack tbody, .stack tr, .stack td { display: block; }
    .stack thead { display: none; }
    .stack tr { border: 1px solid #d0d7de; border-radius: 6px; margin: 0 0 10px; padding: 6px 10px; }
    .stack td { border: 0; padding: 1px 0; text-align: left; white-space: normal; }
    .stack td:first-child { font-weight: bold; }
    .stack td:first-child[data-label]::before { content: attr(data-label) ": "; }
    .stack td + td { display: grid; grid-template-columns: minmax(0, 11fr) minmax(0, 9fr); gap: 12px; }
    .stack td:not(.num) + td:not(.num) { grid-template-columns: minmax(0, 1fr) minmax(0, 3fr); }
    .stack td + td::before { content: attr(data-label); color: #57606a; }
    /* A matrix of short numbers keeps its columns, each row wrapped onto two lines (--cells-per-line cells each). */
    .matrix table, .matrix thead, .matrix tbody { display: block; }
    .matrix table { border: 1px solid #d0d7de; }
    .matrix tr { display: grid; grid-template-columns: minmax(0, 1.8fr) repeat(var(--cells-per-line), minmax(0, 1fr)); border-top: 1px solid #afb8c1; }
    .matrix thead tr { border-top: 0; }
    .matrix th, .matrix td { border: 0; border-left: 1px solid #eaeef2; padding: 2px 4px; }
    .matrix th:first-child, .matrix td:first-child { grid-row: span 2; border-left: 0; white-space: normal; overflow-wrap: anywhere; }
  }
`;

type Table = Extract<Block, { kind: 'table' }>;

/**
 * How a table reflows on a narrow screen: two columns fit as they are; a wide grid of short numbers
 * (a confusion matrix) wraps each row onto two lines; any other table stacks its rows as cards.
 */
function narrowLayout(block: Table): 'keep' | 'matrix' | 'stack' {
  if (block.header.length <= 2) return 'keep';
  const shortCells = block.rows.every((row) => row.slice(1).every((cell) => cell.length <= 5));
  return block.header.length >= 8 && shortCells ? 'matrix' : 'stack';
}

/** The table's wrapper: its narrow layout as a class, and for a matrix how many cells go on each of a row's two lines. */
function tableWrap(block: Table): string {
  const layout = narrowLayout(block);
  const perLine = layout === 'matrix' ? ` style="--cells-per-line: ${Math.ceil((block.header.length - 1) / 2)}"` : '';
  return `<div class="table-wrap ${layout}"${perLine}>`;
}

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
      // Stacked rows label each value with its column's header.
      const cellLabel = (i: number) => (block.header[i] ? ` data-label="${escapeHtml(block.header[i])}"` : '');
      const head = block.header.map((cell, i) => `<th${cellClass(i)}>${escapeHtml(cell)}</th>`).join('');
      const body = block.rows
        .map((row) => `    <tr>${row.map((cell, i) => `<td${cellClass(i)}${cellLabel(i)}>${escapeHtml(cell)}</td>`).join('')}</tr>`)
        .join('\n');
      return `${tableWrap(block)}<table>\n  <thead><tr>${head}</tr></thead>\n  <tbody>\n${body}\n  </tbody>\n</table></div>`;
    }
    case 'figure': {
      const width = pngWidth(block.file.data);
      // The PNGs are drawn at 2×; showing them at half width keeps text at its intended size.
      const size = width ? ` width="${Math.round(width / 2)}"` : '';
      const source = `data:image/png;base64,${Buffer.from(block.file.data).toString('base64')}`;
      const spec = block.specPath ? ` · <a href="${escapeHtml(block.specPath)}">Vega-Lite spec</a>` : '';
      // A tap opens the chart at full size (.zoom in the style): on a phone it is shown shrunk to the screen.
      return (
        `<figure>\n  <details class="zoom"><summary title="Tap to open full size"><img src="${source}" alt="${escapeHtml(block.caption)}"${size}></summary></details>\n` +
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
