#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"jiceng: FHIR R4 platform for county medical communities"};
  app.require_subcommand(1);
  auto* version = app.add_subcommand("version", "Print the version");
  version->callback([] { std::cout << "jiceng " << JICENG_VERSION << "\n"; });
  CLI11_PARSE(app, argc, argv);
  return 0;
}
