#include "fhir/xhtml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <climits>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>

namespace jiceng::fhir {

namespace {

constexpr std::string_view kXhtmlNs = "http://www.w3.org/1999/xhtml";
constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";

// Elements: the txt-1 invariant's XPath in the R4 definitions (profiles-types.json, Narrative.div,
// the machine-readable form of "chapters 7-11 (except section 4 of chapter 9) and 15 of HTML 4.0,
// <a> and images"), plus three formatting elements those chapters define that the XPath omits:
// address (HTML 4.0 7.5.6), bdo (8.2.4) and kbd (9.2.1). Not here: ins/del (9.4, excluded by
// txt-1), the deprecated center/font/basefont/s/strike/u/dir/menu, and everything outside those
// chapters (script, style, form controls, frames, object/embed/applet, head/body/html, base,
// link, meta, title). Sorted, for binary search.
constexpr std::string_view kElements[] = {
    "a",       "abbr",  "acronym", "address", "b",        "bdo",   "big",   "blockquote", "br",
    "caption", "cite",  "code",    "col",     "colgroup", "dd",    "dfn",   "div",        "dl",
    "dt",      "em",    "h1",      "h2",      "h3",       "h4",    "h5",    "h6",         "hr",
    "i",       "img",   "kbd",     "li",      "ol",       "p",     "pre",   "q",          "samp",
    "small",   "span",  "strong",  "sub",     "sup",      "table", "tbody", "td",         "tfoot",
    "th",      "thead", "tr",      "tt",      "ul",       "var"};

// Attributes without a namespace: the txt-1 XPath's list, verbatim (cellhalign and cellvalign are
// in it, though HTML 4.0 spells them differently). No event handlers (on*) and no form, frame or
// object attributes. Sorted, for binary search.
constexpr std::string_view kAttributes[] = {
    "abbr",       "accesskey",   "align",       "alt",        "axis",   "bgcolor", "border",
    "cellhalign", "cellpadding", "cellspacing", "cellvalign", "char",   "charoff", "charset",
    "cite",       "class",       "colspan",     "compact",    "coords", "dir",     "frame",
    "headers",    "height",      "href",        "hreflang",   "hspace", "id",      "lang",
    "longdesc",   "name",        "nowrap",      "rel",        "rev",    "rowspan", "rules",
    "scope",      "shape",       "span",        "src",        "start",  "style",   "summary",
    "tabindex",   "title",       "type",        "valign",     "value",  "vspace",  "width"};

// URL schemes a narrative link or image may use; a relative reference ("#x", "Binary/1") has
// none. An allow-list, because the dangerous ones (javascript:, vbscript:, data:text/html, and
// whatever a browser adds next) are open-ended.
constexpr std::string_view kSchemes[] = {"ftp", "http", "https", "mailto", "tel", "urn"};

static_assert(std::is_sorted(std::begin(kElements), std::end(kElements)));
static_assert(std::is_sorted(std::begin(kAttributes), std::end(kAttributes)));
static_assert(std::is_sorted(std::begin(kSchemes), std::end(kSchemes)));

bool Contains(const std::string_view* first, const std::string_view* last, std::string_view name) {
  return std::binary_search(first, last, name);
}
template <size_t N>
bool Contains(const std::string_view (&list)[N], std::string_view name) {
  return Contains(list, list + N, name);
}

std::string_view View(const xmlChar* s) {
  return s ? std::string_view(reinterpret_cast<const char*>(s)) : "";
}

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The value as a browser's URL parser reads it: it drops ASCII tab and newline anywhere and
// C0 controls and spaces at the ends, so "java\tscript:" is still javascript:. Dropping every
// character up to U+0020 is a superset of that.
std::string Compact(std::string_view v) {
  std::string s;
  s.reserve(v.size());
  for (char c : v)
    if (static_cast<unsigned char>(c) > 0x20) s += c;
  return s;
}

// Why the URL in attribute `attr` of `element` is refused, or empty when it is fine.
std::string UrlProblem(std::string_view element, std::string_view attr, std::string_view value) {
  std::string url = Compact(value);
  // RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"; anything else before the
  // first ':' (or no ':') makes a relative reference.
  size_t i = 0;
  while (i < url.size()) {
    char c = url[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!(alpha || (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')))) break;
    ++i;
  }
  if (i == 0 || i >= url.size() || url[i] != ':') return {};
  std::string scheme;
  for (size_t k = 0; k < i; ++k) scheme += Lower(url[k]);
  if (Contains(kSchemes, scheme)) return {};
  if (scheme == "data") {
    // An inline image is how narratives carry pictures; any other data: URL can be a document
    // (data:text/html) that runs script.
    std::string type;
    for (size_t k = i + 1; k < url.size() && url[k] != ';' && url[k] != ','; ++k)
      type += Lower(url[k]);
    if (element == "img" && attr == "src" && type.rfind("image/", 0) == 0) return {};
    return "a data: URL is allowed only as an image (img src=\"data:image/...\")";
  }
  return "URL scheme '" + scheme +
         ":' is not allowed (only http, https, ftp, mailto, tel, urn, relative references and "
         "data:image in img src)";
}

// Why a style attribute is refused, or empty. CSS in an attribute cannot load a stylesheet, but
// old engines ran script from it (expression(), behavior, -moz-binding, javascript: in url());
// backslash escapes could spell those past this check, so they are refused too.
std::string StyleProblem(std::string_view value) {
  std::string css;
  css.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '/' && i + 1 < value.size() && value[i + 1] == '*') {  // comments hide nothing
      size_t end = value.find("*/", i + 2);
      if (end == std::string_view::npos) break;
      i = end + 1;
      continue;
    }
    if (static_cast<unsigned char>(value[i]) <= 0x20) continue;
    css += Lower(value[i]);
  }
  if (css.find('\\') != std::string::npos)
    return "CSS escapes (\\) are not allowed in a style attribute";
  for (std::string_view bad :
       {"expression(", "javascript:", "vbscript:", "behavior:", "-moz-binding"}) {
    if (css.find(bad) != std::string::npos)
      return "script-bearing CSS ('" + std::string(bad) + "') is not allowed in a style attribute";
  }
  return {};
}

struct ParseError {
  bool have = false;
  std::string message;
  int line = 0;
  int column = 0;
  int code = 0;
};

// Keeps the first error (libxml2's own "last error" is often a consequence of the first).
void OnError(void* user, xmlErrorPtr e) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(user);
  auto* first = static_cast<ParseError*>(ctxt->_private);
  if (!e || e->level < XML_ERR_ERROR || first->have) return;
  first->have = true;
  first->message = e->message ? e->message : "unknown error";
  while (!first->message.empty() && (first->message.back() == '\n' || first->message.back() == ' '))
    first->message.pop_back();
  first->line = e->line;
  first->column = e->int2;
  first->code = e->code;
}

struct CtxtFree {
  void operator()(xmlParserCtxtPtr c) const { xmlFreeParserCtxt(c); }
};
struct DocFree {
  void operator()(xmlDocPtr d) const { xmlFreeDoc(d); }
};
struct XmlFree {
  void operator()(xmlChar* s) const { xmlFree(s); }
};

class Checker {
 public:
  // An HTML parser ends a comment where XML does not: "<!-->" and "<!--->" are empty comments
  // to a browser, and "--!>" closes one, so `<!--><img src=x onerror=…>-->` is one comment here
  // and script there. A comment that could read so (any '<' or '>', or a leading '-') is refused.
  static std::string CommentProblem(xmlNodePtr n) {
    std::string_view text = View(n->content);
    if (text.find_first_of("<>") != std::string_view::npos || text.starts_with('-'))
      return "a comment holding '<' or '>', or starting with '-', is not allowed (browsers read "
             "it differently)" +
             At(n);
    return {};
  }

  // Empty when the tree is fine.
  std::string Run(xmlDocPtr doc) {
    if (doc->intSubset || doc->extSubset) return "a DOCTYPE is not allowed";
    for (xmlNodePtr n = doc->children; n; n = n->next) {
      if (n->type == XML_PI_NODE) return "processing instructions are not allowed" + At(n);
      if (n->type == XML_COMMENT_NODE) {
        if (std::string problem = CommentProblem(n); !problem.empty()) return problem;
      }
      if (n->type == XML_DTD_NODE) return "a DOCTYPE is not allowed";
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root) return "no root element";
    std::string_view ns = root->ns ? View(root->ns->href) : "";
    if (View(root->name) != "div" || ns != kXhtmlNs) {
      std::string found = "<" + std::string(View(root->name)) + ">";
      if (ns.empty())
        found += " without a namespace";
      else if (ns != kXhtmlNs)
        found += " in namespace " + std::string(ns);
      return "the root element must be <div xmlns=\"http://www.w3.org/1999/xhtml\">, found " +
             found;
    }
    if (std::string why = Element(root); !why.empty()) return why;
    if (!content_)
      return "the narrative has no content (txt-2: some non-whitespace text or an image is "
             "required)";
    return {};
  }

 private:
  // " at div/table/tr[2]/td (line 3)": the XPath-like place of `n`, built only for a message so
  // a valid narrative costs no string work.
  static std::string At(xmlNodePtr n) {
    std::string path;
    for (xmlNodePtr e = n; e && e->type != XML_DOCUMENT_NODE; e = e->parent) {
      if (e->type != XML_ELEMENT_NODE) continue;
      int pos = 1, same = 0;
      for (xmlNodePtr s = e->prev; s; s = s->prev)
        if (s->type == XML_ELEMENT_NODE && xmlStrEqual(s->name, e->name)) ++pos;
      for (xmlNodePtr s = e->next; s; s = s->next)
        if (s->type == XML_ELEMENT_NODE && xmlStrEqual(s->name, e->name)) ++same;
      std::string step(View(e->name));
      if (pos > 1 || same > 0) step += "[" + std::to_string(pos) + "]";
      path = path.empty() ? step : step + "/" + path;
    }
    std::string s = " at " + (path.empty() ? std::string("top level") : path);
    long line = xmlGetLineNo(n);
    if (line > 0) s += " (line " + std::to_string(line) + ")";
    return s;
  }

  std::string Element(xmlNodePtr el) {
    std::string_view name = View(el->name);
    if (!el->ns || View(el->ns->href) != kXhtmlNs) {
      return "element <" + std::string(name) + "> is not in the XHTML namespace" + At(el);
    }
    if (!Contains(kElements, name)) {
      return "element <" + std::string(name) +
             "> is not allowed (txt-1: only the basic HTML formatting elements, <a> and <img>)" +
             At(el);
    }
    for (xmlAttrPtr a = el->properties; a; a = a->next) {
      if (std::string why = Attribute(el, a); !why.empty()) return why + At(el);
    }
    if (name == "img" && xmlHasProp(el, reinterpret_cast<const xmlChar*>("src"))) content_ = true;
    for (xmlNodePtr c = el->children; c; c = c->next) {
      switch (c->type) {
        case XML_ELEMENT_NODE:
          if (std::string why = Element(c); !why.empty()) return why;
          break;
        case XML_TEXT_NODE:
          if (!content_) {
            for (char ch : View(c->content))
              if (!IsXmlSpace(ch)) {
                content_ = true;
                break;
              }
          }
          break;
        case XML_COMMENT_NODE:
          if (std::string problem = CommentProblem(c); !problem.empty()) return problem;
          break;
        case XML_CDATA_SECTION_NODE:
          // An HTML parser reads "<![CDATA[" as a bogus comment ending at the first '>', so the
          // same string could be text to us and markup to a browser.
          return "CDATA sections are not allowed (escape the text instead)" + At(c);
        case XML_PI_NODE:
          return "processing instructions are not allowed" + At(c);
        case XML_ENTITY_REF_NODE:
          return "entity references are not allowed (only &lt; &gt; &amp; &quot; &apos; and "
                 "character references)" +
                 At(c);
        default:
          return "unexpected XML node" + At(c);
      }
    }
    return {};
  }

  static std::string Attribute(xmlNodePtr el, xmlAttrPtr a) {
    std::string_view name = View(a->name);
    std::string_view element = View(el->name);
    if (a->ns) {
      // xml:lang and xml:space are how XHTML states language and whitespace handling; any other
      // namespaced attribute (xlink:href above all) is outside the narrative rules.
      if (View(a->ns->href) == kXmlNs && (name == "lang" || name == "space")) return {};
      std::string prefix = a->ns->prefix ? std::string(View(a->ns->prefix)) + ":" : "";
      return "attribute '" + prefix + std::string(name) + "' is not allowed";
    }
    if (name.size() >= 2 && Lower(name[0]) == 'o' && Lower(name[1]) == 'n') {
      return "event attribute '" + std::string(name) +
             "' is not allowed (no scripts in a narrative)";
    }
    if (!Contains(kAttributes, name)) {
      return "attribute '" + std::string(name) + "' is not allowed on <" + std::string(element) +
             "> (txt-1)";
    }
    bool url = name == "href" || name == "src" || name == "cite" || name == "longdesc";
    if (!url && name != "style") return {};
    std::unique_ptr<xmlChar, XmlFree> value(xmlNodeListGetString(el->doc, a->children, 1));
    std::string_view v = View(value.get());
    std::string why = url ? UrlProblem(element, name, v) : StyleProblem(v);
    if (!why.empty()) why = "attribute '" + std::string(name) + "': " + why;
    return why;
  }

  bool content_ = false;
};

}  // namespace

bool CheckNarrativeXhtml(std::string_view xhtml, std::string* why) {
  auto fail = [why](std::string msg) {
    if (why) *why = std::move(msg);
    return false;
  };
  // Whatever precedes the root (an XML declaration, a DOCTYPE with its entities, a processing
  // instruction) is refused before libxml2 sees it, so no DTD is ever read.
  size_t start = 0;
  while (start < xhtml.size() && IsXmlSpace(xhtml[start])) ++start;
  if (start + 1 >= xhtml.size() || xhtml[start] != '<' || xhtml[start + 1] == '!' ||
      xhtml[start + 1] == '?') {
    return fail(
        "the narrative must start with its root <div> element (no XML declaration, DOCTYPE, "
        "comment or "
        "processing instruction before it)");
  }
  if (xhtml.size() > static_cast<size_t>(INT_MAX)) return fail("the narrative is too large");

  // libxml2 wants its global state set up once before use from several threads.
  static std::once_flag init;
  std::call_once(init, [] { xmlInitParser(); });

  std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(xmlNewParserCtxt());
  if (!ctxt) return fail("out of memory");
  ParseError first;
  ctxt->_private = &first;
  ctxt->sax->serror = OnError;  // collect errors here instead of printing them
  // No XML_PARSE_NOENT (entities stay unexpanded), no DTDLOAD/DTDATTR/DTDVALID, no XINCLUDE and
  // no HUGE (libxml2 keeps its depth and size limits); NONET forbids any fetch.
  constexpr int kOptions = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
  std::unique_ptr<xmlDoc, DocFree> doc(xmlCtxtReadMemory(
      ctxt.get(), xhtml.data(), static_cast<int>(xhtml.size()), nullptr, "UTF-8", kOptions));
  if (first.have || !doc) {
    std::string msg =
        "not well-formed XML: " + (first.have ? first.message : std::string("parse failed"));
    if (first.code == XML_ERR_UNDECLARED_ENTITY || first.code == XML_WAR_UNDECLARED_ENTITY) {
      msg +=
          " (only &lt; &gt; &amp; &quot; &apos; and character references such as &#160; are "
          "allowed)";
    }
    if (first.line > 0)
      msg +=
          " (line " + std::to_string(first.line) + ", column " + std::to_string(first.column) + ")";
    return fail(std::move(msg));
  }
  std::string problem = Checker().Run(doc.get());
  if (!problem.empty()) return fail(std::move(problem));
  return true;
}

}  // namespace jiceng::fhir
