#include "generator/tables.h"

#include <array>
#include <numeric>

namespace jiceng::generator {
namespace {

// Top 100 surnames in the order of the Ministry of Public Security's household-registration
// name reports (2019/2020, 《二〇二〇年全国姓名报告》); shares are approximate published figures
// for the leaders (王 ≈7.1%, 李 ≈7.0%, 张 ≈6.7%, 刘 ≈5.3%, 陈 ≈4.6%) and a smooth tail for the
// rest. Together they cover ≈85% of the population; we renormalise over the list. 吕 uses the
// passport spelling Lyu.
constexpr std::array<Surname, 100> kSurnames = {{
    {"王", "Wang", 7.12}, {"李", "Li", 7.00},    {"张", "Zhang", 6.74}, {"刘", "Liu", 5.30},
    {"陈", "Chen", 4.61}, {"杨", "Yang", 3.22},  {"黄", "Huang", 2.37}, {"赵", "Zhao", 2.29},
    {"吴", "Wu", 2.05},   {"周", "Zhou", 1.94},  {"徐", "Xu", 1.60},    {"孙", "Sun", 1.54},
    {"马", "Ma", 1.46},   {"朱", "Zhu", 1.40},   {"胡", "Hu", 1.31},    {"郭", "Guo", 1.18},
    {"何", "He", 1.18},   {"林", "Lin", 1.14},   {"高", "Gao", 1.10},   {"罗", "Luo", 1.02},
    {"郑", "Zheng", 0.98}, {"梁", "Liang", 0.88}, {"谢", "Xie", 0.82},   {"宋", "Song", 0.79},
    {"唐", "Tang", 0.78}, {"许", "Xu", 0.72},    {"韩", "Han", 0.70},   {"冯", "Feng", 0.68},
    {"邓", "Deng", 0.68}, {"曹", "Cao", 0.66},   {"彭", "Peng", 0.63},  {"曾", "Zeng", 0.61},
    {"肖", "Xiao", 0.59}, {"田", "Tian", 0.57},  {"董", "Dong", 0.56},  {"袁", "Yuan", 0.54},
    {"潘", "Pan", 0.53},  {"于", "Yu", 0.52},    {"蒋", "Jiang", 0.51}, {"蔡", "Cai", 0.50},
    {"余", "Yu", 0.49},   {"杜", "Du", 0.48},    {"叶", "Ye", 0.47},    {"程", "Cheng", 0.46},
    {"苏", "Su", 0.45},   {"魏", "Wei", 0.44},   {"吕", "Lyu", 0.43},   {"丁", "Ding", 0.42},
    {"任", "Ren", 0.41},  {"沈", "Shen", 0.40},  {"姚", "Yao", 0.39},   {"卢", "Lu", 0.38},
    {"姜", "Jiang", 0.37}, {"崔", "Cui", 0.36},  {"钟", "Zhong", 0.35}, {"谭", "Tan", 0.34},
    {"陆", "Lu", 0.33},   {"汪", "Wang", 0.32},  {"范", "Fan", 0.31},   {"金", "Jin", 0.31},
    {"石", "Shi", 0.30},  {"廖", "Liao", 0.29},  {"贾", "Jia", 0.29},   {"夏", "Xia", 0.28},
    {"韦", "Wei", 0.28},  {"付", "Fu", 0.27},    {"方", "Fang", 0.27},  {"白", "Bai", 0.26},
    {"邹", "Zou", 0.26},  {"孟", "Meng", 0.25},  {"熊", "Xiong", 0.25}, {"秦", "Qin", 0.24},
    {"邱", "Qiu", 0.24},  {"江", "Jiang", 0.23}, {"尹", "Yin", 0.23},   {"薛", "Xue", 0.22},
    {"闫", "Yan", 0.22},  {"段", "Duan", 0.21},  {"雷", "Lei", 0.21},   {"侯", "Hou", 0.20},
    {"龙", "Long", 0.20}, {"史", "Shi", 0.19},   {"陶", "Tao", 0.19},   {"黎", "Li", 0.18},
    {"贺", "He", 0.18},   {"顾", "Gu", 0.17},    {"毛", "Mao", 0.17},   {"郝", "Hao", 0.16},
    {"龚", "Gong", 0.16}, {"邵", "Shao", 0.16},  {"万", "Wan", 0.15},   {"钱", "Qian", 0.15},
    {"覃", "Qin", 0.15},  {"武", "Wu", 0.14},    {"戴", "Dai", 0.14},   {"孔", "Kong", 0.13},
    {"汤", "Tang", 0.13}, {"庞", "Pang", 0.12},  {"严", "Yan", 0.12},   {"莫", "Mo", 0.12},
}};

constexpr std::array<NameChar, 30> kMaleOld = {{
    {"建", "jian"}, {"国", "guo"},  {"华", "hua"},  {"明", "ming"}, {"军", "jun"},
    {"伟", "wei"},  {"强", "qiang"}, {"平", "ping"}, {"志", "zhi"},  {"文", "wen"},
    {"德", "de"},   {"福", "fu"},   {"荣", "rong"}, {"海", "hai"},  {"林", "lin"},
    {"根", "gen"},  {"金", "jin"},  {"宝", "bao"},  {"成", "cheng"}, {"刚", "gang"},
    {"东", "dong"}, {"生", "sheng"}, {"忠", "zhong"}, {"兴", "xing"}, {"发", "fa"},
    {"勇", "yong"}, {"永", "yong"}, {"春", "chun"}, {"新", "xin"},  {"山", "shan"},
}};
constexpr std::array<NameChar, 25> kFemaleOld = {{
    {"秀", "xiu"}, {"英", "ying"}, {"兰", "lan"},  {"桂", "gui"},  {"芳", "fang"},
    {"珍", "zhen"}, {"凤", "feng"}, {"玉", "yu"},   {"梅", "mei"},  {"红", "hong"},
    {"华", "hua"}, {"丽", "li"},   {"霞", "xia"},  {"琴", "qin"},  {"云", "yun"},
    {"莲", "lian"}, {"萍", "ping"}, {"敏", "min"},  {"娟", "juan"}, {"燕", "yan"},
    {"美", "mei"}, {"菊", "ju"},   {"花", "hua"},  {"素", "su"},   {"淑", "shu"},
}};
constexpr std::array<NameChar, 30> kMaleYoung = {{
    {"浩", "hao"}, {"宇", "yu"},   {"轩", "xuan"}, {"子", "zi"},   {"梓", "zi"},
    {"俊", "jun"}, {"杰", "jie"},  {"博", "bo"},   {"文", "wen"},  {"睿", "rui"},
    {"泽", "ze"},  {"晨", "chen"}, {"一", "yi"},   {"鑫", "xin"},  {"磊", "lei"},
    {"涛", "tao"}, {"鹏", "peng"}, {"飞", "fei"},  {"超", "chao"}, {"凯", "kai"},
    {"航", "hang"}, {"然", "ran"}, {"昊", "hao"},  {"辰", "chen"}, {"阳", "yang"},
    {"天", "tian"}, {"佳", "jia"}, {"嘉", "jia"},  {"豪", "hao"},  {"明", "ming"},
}};
constexpr std::array<NameChar, 30> kFemaleYoung = {{
    {"欣", "xin"}, {"怡", "yi"},   {"梓", "zi"},   {"涵", "han"},  {"雨", "yu"},
    {"萱", "xuan"}, {"诗", "shi"}, {"琪", "qi"},   {"佳", "jia"},  {"静", "jing"},
    {"婷", "ting"}, {"雪", "xue"}, {"颖", "ying"}, {"思", "si"},   {"悦", "yue"},
    {"可", "ke"},  {"馨", "xin"},  {"晴", "qing"}, {"瑶", "yao"},  {"妍", "yan"},
    {"语", "yu"},  {"彤", "tong"}, {"慧", "hui"},  {"倩", "qian"}, {"丹", "dan"},
    {"月", "yue"}, {"嘉", "jia"},  {"若", "ruo"},  {"紫", "zi"},   {"一", "yi"},
}};
// Characters that only appear through substitutions still need pinyin for the duplicate's
// romanised name (a clerk who typed 鸣 for 明 romanises the same sound).
constexpr std::array<NameChar, 34> kExtraChars = {{
    {"鸣", "ming"}, {"玮", "wei"},  {"桦", "hua"},  {"莉", "li"},   {"婧", "jing"},
    {"君", "jun"},  {"洁", "jie"},  {"方", "fang"}, {"瑛", "ying"}, {"虹", "hong"},
    {"健", "jian"}, {"雯", "wen"},  {"民", "min"},  {"韬", "tao"},  {"蕾", "lei"},
    {"朋", "peng"}, {"菲", "fei"},  {"家", "jia"},  {"仪", "yi"},   {"羽", "yu"},
    {"琦", "qi"},   {"亭", "ting"}, {"艳", "yan"},  {"绣", "xiu"},  {"岚", "lan"},
    {"玫", "mei"},  {"芸", "yun"},  {"國", "guo"},  {"華", "hua"},  {"軍", "jun"},
    {"偉", "wei"},  {"紅", "hong"}, {"麗", "li"},   {"蘭", "lan"},
}};

constexpr std::array<CharSwap, 40> kTraditional = {{
    {"陈", "陳"}, {"刘", "劉"}, {"张", "張"}, {"黄", "黃"}, {"赵", "趙"}, {"吴", "吳"},
    {"杨", "楊"}, {"孙", "孫"}, {"马", "馬"}, {"郑", "鄭"}, {"罗", "羅"}, {"谢", "謝"},
    {"许", "許"}, {"韩", "韓"}, {"邓", "鄧"}, {"冯", "馮"}, {"叶", "葉"}, {"苏", "蘇"},
    {"吕", "呂"}, {"卢", "盧"}, {"钟", "鍾"}, {"谭", "譚"}, {"陆", "陸"}, {"贾", "賈"},
    {"邹", "鄒"}, {"龙", "龍"}, {"顾", "顧"}, {"龚", "龔"}, {"钱", "錢"}, {"严", "嚴"},
    {"蒋", "蔣"}, {"国", "國"}, {"华", "華"}, {"军", "軍"}, {"伟", "偉"}, {"红", "紅"},
    {"丽", "麗"}, {"兰", "蘭"}, {"凤", "鳳"}, {"东", "東"},
}};

constexpr std::array<CharSwap, 30> kHomophones = {{
    {"明", "鸣"}, {"伟", "玮"}, {"华", "桦"}, {"丽", "莉"}, {"静", "婧"}, {"军", "君"},
    {"杰", "洁"}, {"芳", "方"}, {"英", "瑛"}, {"红", "虹"}, {"平", "萍"}, {"建", "健"},
    {"文", "雯"}, {"敏", "民"}, {"涛", "韬"}, {"磊", "蕾"}, {"鹏", "朋"}, {"飞", "菲"},
    {"佳", "家"}, {"欣", "馨"}, {"怡", "仪"}, {"雨", "语"}, {"晨", "辰"}, {"浩", "昊"},
    {"宇", "羽"}, {"琪", "琦"}, {"婷", "亭"}, {"燕", "艳"}, {"秀", "绣"}, {"兰", "岚"},
}};

// GB/T 2260 codes of Jiaxing (嘉兴市, 3304) and Huzhou (湖州市, 3305), Zhejiang. The default
// single county is 330421 嘉善县. Postal codes are the county seats' (approximate for districts).
constexpr std::array<CountyInfo, 12> kCounties = {{
    {"330421", "嘉善县", "嘉兴市", "3304", "浙江省", "314100"},
    {"330424", "海盐县", "嘉兴市", "3304", "浙江省", "314300"},
    {"330481", "海宁市", "嘉兴市", "3304", "浙江省", "314400"},
    {"330482", "平湖市", "嘉兴市", "3304", "浙江省", "314200"},
    {"330483", "桐乡市", "嘉兴市", "3304", "浙江省", "314500"},
    {"330402", "南湖区", "嘉兴市", "3304", "浙江省", "314051"},
    {"330411", "秀洲区", "嘉兴市", "3304", "浙江省", "314031"},
    {"330521", "德清县", "湖州市", "3305", "浙江省", "313200"},
    {"330522", "长兴县", "湖州市", "3305", "浙江省", "313100"},
    {"330523", "安吉县", "湖州市", "3305", "浙江省", "313300"},
    {"330502", "吴兴区", "湖州市", "3305", "浙江省", "313000"},
    {"330503", "南浔区", "湖州市", "3305", "浙江省", "313009"},
}};

// 阜阳市 (Anhui) counties, a large source of marriage and labour migration to Zhejiang.
constexpr std::array<std::string_view, 4> kMigrantRegions = {"341221", "341222", "341225",
                                                             "341226"};

constexpr std::array<std::string_view, 26> kPlaceFirst = {
    "东", "西", "南", "北", "新", "大", "小", "长", "高", "石", "青", "白", "金",
    "马", "龙", "凤", "桃", "柳", "杨", "梅", "荷", "竹", "松", "枫", "丰", "永"};
constexpr std::array<std::string_view, 16> kPlaceSecond = {
    "桥", "塘", "湾", "港", "浜", "溪", "河", "山", "岭", "坝", "庄", "店", "集", "埠", "泾", "圩"};

constexpr std::array<std::string_view, 30> kMobilePrefixes = {
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159", "166",
    "177", "180", "181", "182", "183", "186", "187", "188", "189", "199"};

// Age structure of China's rural (乡村) population from the 7th national census (2020,
// 《中国人口普查年鉴-2020》, 乡村 by 5-year age group; 65+ ≈ 17.7% in 2020), rounded, then aged
// forward to the 2025 reference date: the large 1955–1960 cohorts (60–64 in 2020) are now 65–69,
// which lifts 65+ to ≈ 19.5% — the "about one in five" the county planners work with.
constexpr std::array<double, 18> kAgeBands = {
    4.6,  // 0-4   (births fell from 2017 on)
    6.0,  // 5-9
    6.5,  // 10-14
    5.6,  // 15-19
    4.2,  // 20-24
    4.4,  // 25-29
    5.4,  // 30-34
    5.6,  // 35-39
    5.5,  // 40-44
    6.6,  // 45-49
    8.6,  // 50-54
    8.5,  // 55-59
    6.2,  // 60-64
    7.4,  // 65-69
    5.3,  // 70-74
    3.4,  // 75-79
    2.0,  // 80-84
    1.5,  // 85+
};

}  // namespace

std::span<const Surname> Surnames() { return kSurnames; }
double SurnameShareTotal() {
  static const double total = std::accumulate(
      kSurnames.begin(), kSurnames.end(), 0.0,
      [](double s, const Surname& n) { return s + n.share; });
  return total;
}

std::span<const NameChar> GivenChars(bool male, bool born_before_1980) {
  if (male) return born_before_1980 ? std::span<const NameChar>(kMaleOld) : kMaleYoung;
  return born_before_1980 ? std::span<const NameChar>(kFemaleOld) : kFemaleYoung;
}

std::string_view PinyinOf(std::string_view hanzi) {
  for (auto list : {std::span<const NameChar>(kMaleOld), std::span<const NameChar>(kFemaleOld),
                    std::span<const NameChar>(kMaleYoung), std::span<const NameChar>(kFemaleYoung),
                    std::span<const NameChar>(kExtraChars)}) {
    for (const auto& c : list) {
      if (c.hanzi == hanzi) return c.pinyin;
    }
  }
  for (const auto& s : kSurnames) {
    if (s.hanzi == hanzi) return s.pinyin;
  }
  return {};
}

std::span<const CharSwap> TraditionalForms() { return kTraditional; }
std::span<const CharSwap> Homophones() { return kHomophones; }
std::span<const CountyInfo> Counties() { return kCounties; }
std::span<const std::string_view> MigrantBirthRegions() { return kMigrantRegions; }
std::span<const std::string_view> PlaceFirst() { return kPlaceFirst; }
std::span<const std::string_view> PlaceSecond() { return kPlaceSecond; }
std::span<const std::string_view> MobilePrefixes() { return kMobilePrefixes; }
std::span<const double> AgeBandShares() { return kAgeBands; }

double MaleShareAtAge(int age) {
  // Census sex ratios: high at young ages (sex ratio at birth ≈ 1.11–1.18 in 2000–2015), near
  // parity in working ages, female majority among the oldest.
  if (age < 20) return 0.535;
  if (age < 60) return 0.510;
  if (age < 75) return 0.500;
  if (age < 85) return 0.460;
  return 0.380;
}

double HypertensionPrevalence(int age) {
  // China Hypertension Survey 2012–2015 (Wang Z et al., Circulation 2018;137:2344): crude
  // prevalence 23.2% of adults ≥ 18, by age ≈ 4% (18–24), 6% (25–34), 15% (35–44), 29% (45–54),
  // 44% (55–64), 56% (65–74), 60% (75+). Awareness 46.9%.
  if (age < 18) return 0.0;
  if (age < 25) return 0.04;
  if (age < 35) return 0.06;
  if (age < 45) return 0.15;
  if (age < 55) return 0.29;
  if (age < 65) return 0.44;
  if (age < 75) return 0.56;
  return 0.60;
}

double DiabetesPrevalence(int age) {
  // Li Y et al., BMJ 2020;369:m997 (2015–2017 survey, WHO/ADA criteria): 12.8% of adults ≈ 11%
  // by WHO criteria alone; by age ≈ 2% (18–29), 5% (30–39), 10% (40–49), 15% (50–59),
  // 21% (60–69), 23% (70+). Awareness 36.5% (Wang L et al., JAMA 2021;326:2498: 36.7%).
  if (age < 18) return 0.0;
  if (age < 30) return 0.02;
  if (age < 40) return 0.05;
  if (age < 50) return 0.10;
  if (age < 60) return 0.15;
  if (age < 70) return 0.21;
  return 0.23;
}

}  // namespace jiceng::generator
