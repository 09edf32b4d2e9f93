#include <cmath>

#include "fhir/fhirpath/fhirpath.h"

namespace jiceng::fhirpath {

Item Item::Node(const json::value* value, const json::value* primitive_ext,
                std::string_view fhir_type, std::string_view context) {
  Item i;
  i.kind_ = Kind::kNode;
  i.json_ = value;
  i.ext_ = primitive_ext;
  i.fhir_type_ = fhir_type;
  i.context_ = context;
  return i;
}
Item Item::Boolean(bool b) {
  Item i;
  i.kind_ = Kind::kBoolean;
  i.v_ = b;
  return i;
}
Item Item::Integer(int64_t v) {
  Item i;
  i.kind_ = Kind::kInteger;
  i.v_ = v;
  return i;
}
Item Item::Dec(Decimal d) {
  Item i;
  i.kind_ = Kind::kDecimal;
  i.v_ = d;
  return i;
}
Item Item::String(std::string s) {
  Item i;
  i.kind_ = Kind::kString;
  i.v_ = std::move(s);
  return i;
}
Item Item::Temporal(const DateTime& d) {
  Item i;
  i.kind_ = d.kind == DtKind::kDate   ? Kind::kDate
            : d.kind == DtKind::kTime ? Kind::kTime
                                      : Kind::kDateTime;
  i.v_ = d;
  return i;
}
Item Item::Quant(Quantity q) {
  Item i;
  i.kind_ = Kind::kQuantity;
  i.v_ = std::move(q);
  return i;
}
Item Item::TypeInfo(std::string ns, std::string name) {
  Item i;
  i.kind_ = Kind::kType;
  // Built by append: g++ 12 reports a false -Wrestrict on `a + "." + b` here.
  std::string full = std::move(ns);
  full.append(".").append(name);
  i.v_ = std::move(full);
  return i;
}

std::string Item::TypeName() const {
  switch (kind_) {
    case Kind::kNode: return std::string(fhir_type_);
    case Kind::kBoolean: return "Boolean";
    case Kind::kInteger: return "Integer";
    case Kind::kDecimal: return "Decimal";
    case Kind::kString: return "String";
    case Kind::kDate: return "Date";
    case Kind::kDateTime: return "DateTime";
    case Kind::kTime: return "Time";
    case Kind::kQuantity: return "Quantity";
    case Kind::kType: return "TypeInfo";
  }
  return {};
}

namespace {

bool IsQuantityType(std::string_view t) {
  return t == "Quantity" || t == "Age" || t == "Duration" || t == "Distance" || t == "Count" ||
         t == "SimpleQuantity" || t == "MoneyQuantity";
}

}  // namespace

Item Item::ToSystem() const {
  if (kind_ != Kind::kNode || json_ == nullptr) return *this;
  const json::value& v = *json_;
  std::string_view t = fhir_type_;
  switch (v.kind()) {
    case json::kind::bool_:
      return Boolean(v.get_bool());
    case json::kind::int64:
      if (t == "decimal") return Dec({static_cast<double>(v.get_int64()), 0});
      return Integer(v.get_int64());
    case json::kind::uint64:
      if (t == "decimal") return Dec({static_cast<double>(v.get_uint64()), 0});
      return Integer(static_cast<int64_t>(v.get_uint64()));
    case json::kind::double_: {
      double d = v.get_double();
      if ((t == "integer" || t == "positiveInt" || t == "unsignedInt") && d == std::floor(d)) {
        return Integer(static_cast<int64_t>(d));
      }
      return Dec({d, -1});
    }
    case json::kind::string: {
      std::string_view s = v.get_string();
      if (t == "date" || t == "dateTime" || t == "instant" || t == "time") {
        DtKind k = t == "date" ? DtKind::kDate : t == "time" ? DtKind::kTime : DtKind::kDateTime;
        if (auto d = ParseDateTimeText(s, k)) return Temporal(*d);
      }
      return String(std::string(s));
    }
    case json::kind::object: {
      const json::object& o = v.get_object();
      bool typed_quantity = IsQuantityType(t);
      if (!typed_quantity && !t.empty()) return *this;
      const json::value* value = o.if_contains("value");
      if (!value || !value->is_number()) return *this;
      const json::value* code = o.if_contains("code");
      const json::value* unit = o.if_contains("unit");
      if (!typed_quantity && !code && !unit) return *this;
      Quantity q;
      q.value.value = value->to_number<double>();
      q.value.scale = value->is_double() ? -1 : 0;
      std::string_view u = "1";
      if (code && code->is_string()) {
        u = code->get_string();
      } else if (unit && unit->is_string()) {
        u = unit->get_string();
      }
      q.unit.assign(u.data(), u.size());
      return Quant(std::move(q));
    }
    default:
      return *this;
  }
}

std::string Item::ToText() const {
  Item s = ToSystem();
  switch (s.kind_) {
    case Kind::kNode:
      return {};
    case Kind::kBoolean: return s.boolean() ? "true" : "false";
    case Kind::kInteger: return std::to_string(s.integer());
    case Kind::kDecimal: return FormatDecimal(s.decimal());
    case Kind::kString: return s.string();
    case Kind::kDate:
    case Kind::kDateTime:
    case Kind::kTime: return FormatDateTime(s.temporal());
    case Kind::kQuantity: return FormatQuantity(s.quantity());
    case Kind::kType: return s.string();
  }
  return {};
}

}  // namespace jiceng::fhirpath
