// The .hoop grammar as a Chevrotain CstParser.
//
// The parser builds a concrete syntax tree only; every semantic check (unknown names, selectors
// given twice, a rule with no effect, ...) lives in cst-to-ast.ts. Recovery is on, so one run
// reports every syntax error in a file and still yields a (partial) tree.
//
// Use the single `hoopParser` instance (Chevrotain's performance guide: construct once, reset via
// `input`). Constructing runs `performSelfAnalysis`, which throws on a grammar error — so a test
// that merely imports this module guards the grammar.

import {
  CstParser,
  type IParserConfig,
  type IParserErrorMessageProvider,
  type IToken,
  type TokenType,
  EOF,
} from 'chevrotain';
import * as T from './tokens.ts';

/** Human names for tokens in syntax errors (`expected \`}\` but found \`allow\``). */
function label(t: TokenType): string {
  if (t === EOF) return 'end of file';
  return t.LABEL ?? t.name;
}

function found(tok: IToken): string {
  if (tok.tokenType === EOF) return 'end of file';
  const img = tok.image.length > 30 ? tok.image.slice(0, 30) + '…' : tok.image;
  return `\`${img}\``;
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}

function oneOf(names: string[]): string {
  const u = uniq(names);
  if (u.length === 1) return u[0];
  if (u.length <= 8) return `${u.slice(0, -1).join(', ')} or ${u[u.length - 1]}`;
  return `one of ${u.slice(0, 6).join(', ')}, …`;
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    return `expected ${label(expected)} but found ${found(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `expected \`package\`, \`default\`, \`rule\` or \`test\` but found ${found(firstRedundant)}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual }) {
    const firsts = expectedPathsPerAlt.flatMap((alt) => alt.map((path) => label(path[0])));
    return `expected ${oneOf(firsts)} but found ${found(actual[0])}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual }) {
    const firsts = expectedIterationPaths.map((path) => label(path[0]));
    return `expected at least one ${oneOf(firsts)} but found ${found(actual[0])}`;
  },
};

export class HoopParser extends CstParser {
  /**
   * Alternatives and gated repetitions are built once and reused (Chevrotain's performance guide):
   * building `{ ALT: () => ... }` objects on every call costs allocations, and under tsx's
   * keep-names transform a named-function helper call each, which dominated parse time.
   */
  private readonly memo = new Map<string, unknown>();
  private once<T>(key: string, make: () => T): T {
    let v = this.memo.get(key) as T | undefined;
    if (v === undefined) {
      v = make();
      this.memo.set(key, v);
    }
    return v;
  }

  constructor(config: IParserConfig = {}) {
    super(T.ALL_TOKENS, {
      recoveryEnabled: true,
      // Node locations are derived from tokens in cst-to-ast; tracking them here made parsing ~3x slower.
      nodeLocationTracking: 'none',
      maxLookahead: 3,
      errorMessageProvider: messages,
      ...config,
    });
    this.performSelfAnalysis();
  }

  // file: (package | default | rule | test)*
  public file = this.RULE('file', () => {
    this.MANY(() => {
      this.OR(this.once('or1', () => [
        { ALT: () => this.SUBRULE(this.packageDecl) },
        { ALT: () => this.SUBRULE(this.defaultDecl) },
        { ALT: () => this.SUBRULE(this.ruleDecl) },
        { ALT: () => this.SUBRULE(this.testDecl) },
      ]));
    });
  });

  private qualifiedName = this.RULE('qualifiedName', () => {
    this.CONSUME(T.NameTok);
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.CONSUME2(T.NameTok);
    });
  });

  private packageDecl = this.RULE('packageDecl', () => {
    this.CONSUME(T.Package);
    this.SUBRULE(this.qualifiedName);
  });

  // default allow | default block "message"?
  private defaultDecl = this.RULE('defaultDecl', () => {
    this.CONSUME(T.Default);
    this.OR(this.once('or2', () => [
      { ALT: () => this.CONSUME(T.Allow) },
      {
        ALT: () => {
          this.CONSUME(T.Block);
          this.OPTION(() => this.CONSUME(T.StringLiteral));
        },
      },
    ]));
  });

  private ruleDecl = this.RULE('ruleDecl', () => {
    this.CONSUME(T.Rule);
    this.CONSUME(T.NameTok);
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.ruleClause));
    this.CONSUME(T.RBrace);
  });

  private ruleClause = this.RULE('ruleClause', () => {
    this.OR(this.once('or3', () => [
      { ALT: () => this.SUBRULE(this.onSelector) },
      { ALT: () => this.SUBRULE(this.whenSelector) },
      { ALT: () => this.SUBRULE(this.matchSelector) },
      { ALT: () => this.SUBRULE(this.condition) },
      { ALT: () => this.SUBRULE(this.allowEffect) },
      { ALT: () => this.SUBRULE(this.blockEffect) },
      { ALT: () => this.SUBRULE(this.approveEffect) },
      { ALT: () => this.SUBRULE(this.maskEffect) },
      { ALT: () => this.SUBRULE(this.limitEffect) },
    ]));
  });

  // on postgres("glob", ...) | on ssh | on any()
  private onSelector = this.RULE('onSelector', () => {
    this.CONSUME(T.On);
    this.CONSUME(T.NameTok, { LABEL: 'resourceKind' });
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.OPTION2(() => this.SUBRULE(this.stringItems));
      this.CONSUME(T.RParen);
    });
  });

  // "a", "b", "c" with an optional trailing comma
  private stringItems = this.RULE('stringItems', () => {
    this.CONSUME(T.StringLiteral);
    this.MANY(this.once('g13', () => ({
      GATE: () => this.LA(2).tokenType !== T.RBracket && this.LA(2).tokenType !== T.RParen,
      DEF: () => {
        this.CONSUME(T.Comma);
        this.CONSUME2(T.StringLiteral);
      },
    })));
    this.OPTION(() => this.CONSUME2(T.Comma, { LABEL: 'trailingComma' }));
  });

  // ["a", "b"] (at least one)
  private stringList = this.RULE('stringList', () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.stringItems);
    this.CONSUME(T.RBracket);
  });

  // "a" | ["a", "b"]
  private stringOrList = this.RULE('stringOrList', () => {
    this.OR(this.once('or4', () => [
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.SUBRULE(this.stringList) },
    ]));
  });

  // when group "g" | when groups ["a", "b"] | when subject(s) ... | when actor(s) ...
  private whenSelector = this.RULE('whenSelector', () => {
    this.CONSUME(T.When);
    this.OR(this.once('or5', () => [
      { ALT: () => this.CONSUME(T.Group, { LABEL: 'attribute' }) },
      { ALT: () => this.CONSUME(T.Groups, { LABEL: 'attribute' }) },
      { ALT: () => this.CONSUME(T.Subject, { LABEL: 'attribute' }) },
      { ALT: () => this.CONSUME(T.Subjects, { LABEL: 'attribute' }) },
      { ALT: () => this.CONSUME(T.Actor, { LABEL: 'attribute' }) },
      { ALT: () => this.CONSUME(T.Actors, { LABEL: 'attribute' }) },
    ]));
    this.SUBRULE(this.stringOrList);
  });

  private matchSelector = this.RULE('matchSelector', () => {
    this.CONSUME(T.Match);
    this.OR(this.once('or6', () => [
      { ALT: () => this.SUBRULE(this.sqlMatch) },
      { ALT: () => this.SUBRULE(this.shellMatch) },
      { ALT: () => this.SUBRULE(this.sshMatch) },
    ]));
  });

  // ssh interactive / sftp read, write on paths [...] / forward to [...]: the family and its
  // words are plain names (not keywords), checked in cst-to-ast.
  private sshMatch = this.RULE('sshMatch', () => {
    this.CONSUME(T.Identifier, { LABEL: 'family' });
    this.OPTION(this.once('g30', () => ({
      GATE: () => this.LA(1).tokenType === T.Identifier && this.LA(1).image !== 'to',
      DEF: () => {
        this.CONSUME2(T.Identifier, { LABEL: 'word' });
        this.MANY(() => {
          this.CONSUME(T.Comma);
          this.CONSUME3(T.Identifier, { LABEL: 'word' });
        });
      },
    })));
    this.OPTION2(this.once('g31', () => ({
      // `on paths [...]` belongs to the match; a bare `on` starts the next (resource) selector.
      GATE: () => this.LA(1).tokenType === T.On && this.LA(2).image === 'paths',
      DEF: () => {
        this.CONSUME(T.On);
        this.CONSUME4(T.Identifier, { LABEL: 'paths' });
        this.SUBRULE(this.stringOrList, { LABEL: 'pathList' });
      },
    })));
    this.OPTION3(this.once('g32', () => ({
      GATE: () => this.LA(1).tokenType === T.Identifier && this.LA(1).image === 'to',
      DEF: () => {
        this.CONSUME5(T.Identifier, { LABEL: 'to' });
        this.SUBRULE2(this.stringOrList, { LABEL: 'targetList' });
      },
    })));
  });

  // sql select, insert on tables ["public.t*"]; kinds and tables both optional; a single table
  // may be written without brackets (the formatter adds them)
  private sqlMatch = this.RULE('sqlMatch', () => {
    this.CONSUME(T.Sql);
    this.OPTION(() => {
      this.CONSUME(T.KindTok, { LABEL: 'kind' });
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.CONSUME(T.NameTok, { LABEL: 'kind' });
      });
    });
    this.OPTION2(this.once('g16', () => ({
      // `on tables [...]` belongs to the match; a bare `on` starts the next (resource) selector.
      GATE: () => this.LA(2).tokenType === T.Tables,
      DEF: () => {
        this.CONSUME(T.On);
        this.CONSUME(T.Tables);
        this.SUBRULE(this.stringOrList);
      },
    })));
  });

  private shellMatch = this.RULE('shellMatch', () => {
    this.CONSUME(T.Shell);
    this.OR(this.once('or30', () => [
      { GATE: () => this.LA(1).image === 'any', ALT: () => this.CONSUME(T.Identifier, { LABEL: 'any' }) },
      { ALT: () => this.SUBRULE(this.stringOrList) },
    ]));
  });

  private condition = this.RULE('condition', () => {
    this.CONSUME(T.If);
    this.CONSUME(T.Cel);
  });

  private allowEffect = this.RULE('allowEffect', () => {
    this.CONSUME(T.Allow);
  });

  private blockEffect = this.RULE('blockEffect', () => {
    this.CONSUME(T.Block);
    this.OPTION(() => this.CONSUME(T.StringLiteral));
  });

  // approve by group "dba" within 15m | approve by 2 of group "dba" within 15m lasting 1h
  // (`of` and `lasting` are read as names, like `limit rate ... per`: no new keywords; cst-to-ast checks them)
  private approveEffect = this.RULE('approveEffect', () => {
    this.CONSUME(T.Approve);
    this.SUBRULE(this.approverGroups);
    this.OPTION(() => {
      this.CONSUME(T.Within);
      this.CONSUME(T.Duration);
    });
    this.OPTION2(this.once('g18', () => ({
      GATE: () => this.LA(1).tokenType === T.Identifier,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: 'lastingWord' });
        this.CONSUME2(T.Duration, { LABEL: 'lasting' });
      },
    })));
  });

  private approverGroups = this.RULE('approverGroups', () => {
    this.CONSUME(T.By);
    this.OPTION(() => {
      this.CONSUME(T.NumberLiteral, { LABEL: 'quorum' });
      this.CONSUME(T.Identifier, { LABEL: 'ofWord' });
    });
    this.OR(this.once('or7', () => [
      { ALT: () => this.CONSUME(T.Group, { LABEL: 'attribute' }) },
      { ALT: () => this.CONSUME(T.Groups, { LABEL: 'attribute' }) },
    ]));
    this.SUBRULE(this.stringOrList);
  });

  // mask column "t.c" with masker | mask detect d1, d2 with masker
  private maskEffect = this.RULE('maskEffect', () => {
    this.CONSUME(T.Mask);
    this.OR(this.once('or8', () => [
      {
        ALT: () => {
          this.CONSUME(T.Column);
          this.CONSUME(T.StringLiteral);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Detect);
          this.SUBRULE(this.detectorRef);
          this.MANY(() => {
            this.CONSUME(T.Comma);
            this.SUBRULE2(this.detectorRef);
          });
        },
      },
    ]));
    this.CONSUME(T.With);
    this.SUBRULE(this.maskerRef);
  });

  // limit rows 1000 | limit time 30s | limit rate 10 per 1m
  private limitEffect = this.RULE('limitEffect', () => {
    this.CONSUME(T.Limit);
    this.SUBRULE(this.limitSpec);
  });

  // The kind and the values are read loosely (any name, a number or a duration) and checked in
  // cst-to-ast, so a misspelt kind or a count where a duration belongs gets its own diagnostic
  // ("did you mean `rows`?", "`limit time` takes a duration") instead of a syntax error.
  private limitSpec = this.RULE('limitSpec', () => {
    this.CONSUME(T.NameTok, { LABEL: 'limitKind' });
    this.SUBRULE(this.limitValue);
    this.OPTION(this.once('g17', () => ({
      // `per` (or a misspelling of it: any plain identifier, which can never start a clause).
      GATE: () => this.LA(1).tokenType === T.Identifier,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: 'perWord' });
        this.SUBRULE2(this.limitValue, { LABEL: 'perValue' });
      },
    })));
  });

  private limitValue = this.RULE('limitValue', () => {
    this.OR(this.once('or13', () => [
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.CONSUME(T.Duration) },
      { ALT: () => this.CONSUME(T.Identifier) },
    ]));
  });

  private maskerRef = this.RULE('maskerRef', () => {
    this.CONSUME(T.NameTok);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.OPTION2(() => {
        this.CONSUME(T.NumberLiteral);
        this.MANY(() => {
          this.CONSUME(T.Comma);
          this.CONSUME2(T.NumberLiteral);
        });
      });
      this.CONSUME(T.RParen);
    });
  });

  private detectorRef = this.RULE('detectorRef', () => {
    this.CONSUME(T.NameTok);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.OPTION2(() => this.SUBRULE(this.stringItems));
      this.CONSUME(T.RParen);
    });
  });

  private testDecl = this.RULE('testDecl', () => {
    this.CONSUME(T.Test);
    this.CONSUME(T.StringLiteral);
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.testClause));
    this.CONSUME(T.RBrace);
  });

  private testClause = this.RULE('testClause', () => {
    this.OR(this.once('or9', () => [
      {
        ALT: () => {
          this.CONSUME(T.Identity);
          this.SUBRULE(this.objectLit);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Context);
          this.SUBRULE2(this.objectLit);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Estimate);
          this.SUBRULE3(this.objectLit);
        },
      },
      { ALT: () => this.SUBRULE(this.testResource) },
      {
        ALT: () => {
          this.CONSUME(T.Sql);
          this.CONSUME(T.StringLiteral);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Shell);
          this.CONSUME2(T.StringLiteral);
        },
      },
      { ALT: () => this.SUBRULE(this.expectation) },
    ]));
  });

  // resource postgres("prod-main")
  private testResource = this.RULE('testResource', () => {
    this.CONSUME(T.Resource);
    this.CONSUME(T.NameTok, { LABEL: 'resourceKind' });
    this.CONSUME(T.LParen);
    this.CONSUME(T.StringLiteral);
    this.CONSUME(T.RParen);
  });

  private expectation = this.RULE('expectation', () => {
    this.CONSUME(T.Expect);
    this.OR(this.once('or10', () => [
      { ALT: () => this.CONSUME(T.Allow, { LABEL: 'verdict' }) },
      { ALT: () => this.CONSUME(T.Block, { LABEL: 'verdict' }) },
      {
        ALT: () => {
          this.CONSUME(T.Mask, { LABEL: 'verdict' });
          this.OPTION(() => {
            this.CONSUME(T.Column);
            this.CONSUME(T.StringLiteral);
          });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Approve, { LABEL: 'verdict' });
          this.OPTION2(() => this.SUBRULE(this.approverGroups));
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Rules);
          this.CONSUME(T.LBracket);
          this.OPTION3(() => {
            this.SUBRULE(this.qualifiedName);
            this.MANY(() => {
              this.CONSUME(T.Comma);
              this.SUBRULE2(this.qualifiedName);
            });
          });
          this.CONSUME(T.RBracket);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Message);
          this.CONSUME2(T.StringLiteral);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Limit);
          this.SUBRULE(this.limitSpec);
        },
      },
    ]));
  });

  // { key: literal, "quoted key": literal, }
  private objectLit = this.RULE('objectLit', () => {
    this.CONSUME(T.LBrace);
    this.OPTION(() => {
      this.SUBRULE(this.objectEntry);
      this.MANY(this.once('g14', () => ({
        GATE: () => this.LA(2).tokenType !== T.RBrace,
        DEF: () => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.objectEntry);
        },
      })));
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: 'trailingComma' }));
    });
    this.CONSUME(T.RBrace);
  });

  private objectEntry = this.RULE('objectEntry', () => {
    this.OR(this.once('or11', () => [
      { ALT: () => this.CONSUME(T.NameTok, { LABEL: 'key' }) },
      { ALT: () => this.CONSUME(T.StringLiteral, { LABEL: 'key' }) },
    ]));
    this.CONSUME(T.Colon);
    this.SUBRULE(this.literal);
  });

  private listLit = this.RULE('listLit', () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.literal);
      this.MANY(this.once('g15', () => ({
        GATE: () => this.LA(2).tokenType !== T.RBracket,
        DEF: () => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.literal);
        },
      })));
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: 'trailingComma' }));
    });
    this.CONSUME(T.RBracket);
  });

  private literal = this.RULE('literal', () => {
    this.OR(this.once('or12', () => [
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.Null) },
      { ALT: () => this.SUBRULE(this.listLit) },
      { ALT: () => this.SUBRULE(this.objectLit) },
    ]));
  });
}

/** The one parser instance. Not re-entrant: parse one input at a time (JS is single-threaded). */
export const hoopParser = new HoopParser();


