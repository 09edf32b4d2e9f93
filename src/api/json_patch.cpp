#include "api/json_patch.h"

#include <fmt/format.h>

#include <string>
#include <vector>

namespace jiceng::api {

namespace {

Result<std::vector<std::string>> ParsePointer(std::string_view p, const std::string& where) {
  std::vector<std::string> tokens;
  if (p.empty()) return tokens;
  if (p[0] != '/') return Invalid(fmt::format("JSON pointer '{}' must start with '/'", p), where);
  std::size_t i = 1;
  std::string cur;
  for (; i <= p.size(); ++i) {
    if (i == p.size() || p[i] == '/') {
      tokens.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    if (p[i] == '~') {
      if (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1'))
        return Invalid(fmt::format("Bad escape in JSON pointer '{}'", p), where);
      cur += p[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      cur += p[i];
    }
  }
  return tokens;
}

Error Unprocessable(std::string msg, std::string where) {
  return Error(ErrorCode::kUnprocessable, std::move(msg), std::move(where));
}

// Parses an array index token; "-" means one past the end when allow_end.
Result<std::size_t> ArrayIndex(const std::string& tok, std::size_t size, bool allow_end,
                               const std::string& where) {
  if (allow_end && tok == "-") return size;
  if (tok.empty() || tok.size() > 9 || (tok.size() > 1 && tok[0] == '0'))
    return Unprocessable(fmt::format("Bad array index '{}'", tok), where);
  std::size_t n = 0;
  for (char c : tok) {
    if (c < '0' || c > '9') return Unprocessable(fmt::format("Bad array index '{}'", tok), where);
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n > size || (!allow_end && n == size))
    return Unprocessable(fmt::format("Array index {} out of range", n), where);
  return n;
}

// The container that holds the last token.
Result<json::value*> Parent(json::value& doc, const std::vector<std::string>& toks,
                            const std::string& where) {
  json::value* cur = &doc;
  for (std::size_t i = 0; i + 1 < toks.size(); ++i) {
    if (cur->is_object()) {
      auto* next = cur->get_object().if_contains(toks[i]);
      if (!next) return Unprocessable(fmt::format("Path segment '{}' does not exist", toks[i]), where);
      cur = next;
    } else if (cur->is_array()) {
      auto& arr = cur->get_array();
      JC_ASSIGN_OR_RETURN(std::size_t idx, ArrayIndex(toks[i], arr.size(), false, where));
      cur = &arr[idx];
    } else {
      return Unprocessable(fmt::format("Path segment '{}' is not inside a container", toks[i]), where);
    }
  }
  return cur;
}

Result<json::value> Get(json::value& doc, const std::vector<std::string>& toks,
                        const std::string& where) {
  if (toks.empty()) return doc;
  JC_ASSIGN_OR_RETURN(json::value * parent, Parent(doc, toks, where));
  const std::string& last = toks.back();
  if (parent->is_object()) {
    auto* v = parent->get_object().if_contains(last);
    if (!v) return Unprocessable(fmt::format("Path '{}' does not exist", last), where);
    return *v;
  }
  if (parent->is_array()) {
    JC_ASSIGN_OR_RETURN(std::size_t idx, ArrayIndex(last, parent->get_array().size(), false, where));
    return parent->get_array()[idx];
  }
  return Unprocessable("Path does not exist", where);
}

Status Add(json::value& doc, const std::vector<std::string>& toks, json::value v,
           const std::string& where) {
  if (toks.empty()) { doc = std::move(v); return Status::Ok(); }
  JC_ASSIGN_OR_RETURN(json::value * parent, Parent(doc, toks, where));
  if (parent->is_object()) {
    parent->get_object()[toks.back()] = std::move(v);
    return Status::Ok();
  }
  if (parent->is_array()) {
    auto& arr = parent->get_array();
    JC_ASSIGN_OR_RETURN(std::size_t idx, ArrayIndex(toks.back(), arr.size(), true, where));
    arr.insert(arr.begin() + static_cast<std::ptrdiff_t>(idx), std::move(v));
    return Status::Ok();
  }
  return Unprocessable("Target of 'add' is not a container", where);
}

Status Remove(json::value& doc, const std::vector<std::string>& toks, const std::string& where) {
  if (toks.empty()) return Unprocessable("Cannot remove the whole document", where);
  JC_ASSIGN_OR_RETURN(json::value * parent, Parent(doc, toks, where));
  if (parent->is_object()) {
    if (parent->get_object().erase(toks.back()) == 0)
      return Unprocessable(fmt::format("Path '{}' does not exist", toks.back()), where);
    return Status::Ok();
  }
  if (parent->is_array()) {
    auto& arr = parent->get_array();
    JC_ASSIGN_OR_RETURN(std::size_t idx, ArrayIndex(toks.back(), arr.size(), false, where));
    arr.erase(arr.begin() + static_cast<std::ptrdiff_t>(idx));
    return Status::Ok();
  }
  return Unprocessable("Target of 'remove' is not a container", where);
}

Status ApplyOne(json::value& doc, const json::object& op, std::size_t n) {
  const std::string at = fmt::format("patch[{}]", n);
  auto opname = FindString(op, "op");
  auto path = FindString(op, "path");
  if (!opname) return Invalid("Patch operation has no 'op'", at + ".op");
  if (!path) return Invalid("Patch operation has no 'path'", at + ".path");
  JC_ASSIGN_OR_RETURN(auto toks, ParsePointer(*path, at + ".path"));
  const std::string where = at + ".path";
  auto value = [&]() -> Result<json::value> {
    const json::value* v = Find(op, "value");
    if (!v) return Invalid(fmt::format("Patch operation '{}' needs a 'value'", *opname), at + ".value");
    return *v;
  };
  auto from = [&]() -> Result<std::vector<std::string>> {
    auto f = FindString(op, "from");
    if (!f) return Invalid(fmt::format("Patch operation '{}' needs 'from'", *opname), at + ".from");
    return ParsePointer(*f, at + ".from");
  };
  if (*opname == "add") {
    JC_ASSIGN_OR_RETURN(json::value v, value());
    return Add(doc, toks, std::move(v), where);
  }
  if (*opname == "remove") return Remove(doc, toks, where);
  if (*opname == "replace") {
    JC_ASSIGN_OR_RETURN(json::value v, value());
    JC_RETURN_IF_ERROR(Get(doc, toks, where));  // must exist
    if (toks.empty()) { doc = std::move(v); return Status::Ok(); }
    JC_RETURN_IF_ERROR(Remove(doc, toks, where));
    return Add(doc, toks, std::move(v), where);
  }
  if (*opname == "move" || *opname == "copy") {
    JC_ASSIGN_OR_RETURN(auto ftoks, from());
    if (*opname == "move" && toks.size() > ftoks.size() &&
        std::equal(ftoks.begin(), ftoks.end(), toks.begin()))
      return Unprocessable("Cannot move a value into one of its children", where);
    JC_ASSIGN_OR_RETURN(json::value v, Get(doc, ftoks, at + ".from"));
    if (*opname == "move") JC_RETURN_IF_ERROR(Remove(doc, ftoks, at + ".from"));
    return Add(doc, toks, std::move(v), where);
  }
  if (*opname == "test") {
    JC_ASSIGN_OR_RETURN(json::value expected, value());
    JC_ASSIGN_OR_RETURN(json::value actual, Get(doc, toks, where));
    if (actual != expected)
      return Unprocessable(fmt::format("Patch test failed at '{}'", *path), at);
    return Status::Ok();
  }
  return Invalid(fmt::format("Unknown patch operation '{}'", *opname), at + ".op");
}

}  // namespace

Status ApplyJsonPatch(json::value& doc, const json::value& patch) {
  if (!patch.is_array()) return Invalid("A JSON Patch document must be an array of operations", "patch");
  json::value work = doc;  // all-or-nothing
  std::size_t n = 0;
  for (const auto& op : patch.get_array()) {
    if (!op.is_object()) return Invalid("Each patch operation must be an object", fmt::format("patch[{}]", n));
    JC_RETURN_IF_ERROR(ApplyOne(work, op.get_object(), n));
    ++n;
  }
  doc = std::move(work);
  return Status::Ok();
}

}  // namespace jiceng::api
