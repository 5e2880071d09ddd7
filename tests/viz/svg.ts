/** SVG checks for the viz tests: parse strictly (xmldom) and count Vega's marks. */
import { DOMParser } from "npm:@xmldom/xmldom@0.9.12";
import assert from "node:assert/strict";

// deno-lint-ignore no-explicit-any
type Node = any;

/** Parses SVG markup; throws on any XML error or warning, and unless the root is <svg>. */
export function parseSvg(svg: string): Node {
  const doc: Node = new DOMParser({
    onError: (level: string, msg: string) => {
      throw new Error(`SVG does not parse (${level}): ${msg}`);
    },
  }).parseFromString(svg, "image/svg+xml");
  assert.equal(doc.documentElement.nodeName, "svg");
  return doc;
}

/** Elements of a parsed SVG with the given tag name. */
export function elements(doc: Node, tag: string): Node[] {
  return Array.from(doc.getElementsByTagName(tag));
}

/** Vega's mark items of a kind ("line mark", "symbol", "image", "rect", "text"): the children of the
 * `<g>` groups Vega labels with `aria-roledescription="<kind> mark container"`. */
export function markItems(doc: Node, kind: string): Node[] {
  return elements(doc, "g")
    .filter((g) => g.getAttribute("aria-roledescription") === `${kind} mark container`)
    .flatMap((g) => Array.from(g.childNodes).filter((n: Node) => n.nodeType === 1));
}
