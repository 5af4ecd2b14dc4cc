// The shell classifier: web-tree-sitter with the tree-sitter-bash grammar (both ship wasm).
//
// `loadShellClassifier()` loads the grammar once; `classify` is synchronous and never throws:
// a parse error, a dynamic program name or an internal failure gives kind `unknown`.

import { createRequire } from 'node:module';
import { Language, Parser } from 'web-tree-sitter';
import type { ShellAction, ShellClassifier } from '../facts.ts';
import { ShellWalker } from './classify.ts';

let language: Promise<Language> | null = null;

async function loadLanguage(): Promise<Language> {
  const require = createRequire(import.meta.url);
  await Parser.init({ locateFile: () => require.resolve('web-tree-sitter/web-tree-sitter.wasm') });
  return Language.load(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
}

export async function loadShellClassifier(): Promise<ShellClassifier> {
  language ??= loadLanguage();
  const lang = await language; // also initialises the Parser module
  const parser = new Parser();
  parser.setLanguage(lang);
  return {
    classify(text: string): ShellAction {
      const walker = new ShellWalker(parser);
      if (typeof text !== 'string') {
        walker.fail('the command is not text');
        return walker.result(String(text));
      }
      try {
        walker.line(text, 0);
      } catch (e) {
        // A broken invariant must not open the gate.
        walker.fail(`internal classifier error: ${e instanceof Error ? e.message : String(e)}`);
      }
      return walker.result(text);
    },
  };
}
