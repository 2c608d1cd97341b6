#include "scoring/path_attribution.h"

#include <cmath>

#include "models/models.h"

namespace reai::scoring {
namespace {

// A node as read from its tree: children are indices within the tree (-1 for
// a leaf); expected starts as the leaf value and is filled in for splits.
struct TreeNode {
  float threshold = 0;
  std::int32_t feature = -1;
  std::int32_t left = -1, right = -1, missing = -1;
  double cover = 0;
  double expected = 0;
};

Result<TreeNode> read_node(const models::XgbTreeNode& x, std::size_t i, std::size_t tree_size,
                           std::size_t num_features) {
  const double l = x.left, r = x.right, f = x.feature, c = x.condition, d = x.default_left;
  TreeNode node;
  node.cover = x.cover;
  if (l < 0) {
    node.expected = c;  // XGBoost keeps a leaf's value in split_conditions
    return node;
  }
  const double n = double(tree_size);
  // Children after parents (XGBoost's numbering) rules out cycles.
  if (!(l > double(i) && l < n && r > double(i) && r < n) || !(f >= 0 && f < double(num_features))) {
    return invalid_argument("model JSON: tree structure out of range");
  }
  node.feature = static_cast<std::int32_t>(f);
  node.left = static_cast<std::int32_t>(l);
  node.right = static_cast<std::int32_t>(r);
  node.missing = d != 0 ? node.left : node.right;
  node.threshold = static_cast<float>(c);
  return node;
}

// Expected values bottom-up (children have larger indices): the cover-weighted
// mean of the children's, or their plain mean when neither has cover.
void set_expected_values(std::vector<TreeNode>& tree) {
  for (std::size_t k = tree.size(); k-- > 0;) {
    TreeNode& node = tree[k];
    if (node.feature < 0) continue;
    const TreeNode& left = tree[std::size_t(node.left)];
    const TreeNode& right = tree[std::size_t(node.right)];
    const double cl = left.cover, cr = right.cover;
    const double el = left.expected, er = right.expected;
    node.expected = cl + cr > 0 ? (cl * el + cr * er) / (cl + cr) : 0.5 * (el + er);
  }
}

Result<std::vector<TreeNode>> read_tree(const std::vector<models::XgbTreeNode>& tree, std::size_t num_features) {
  std::vector<TreeNode> nodes;
  nodes.reserve(tree.size());
  for (std::size_t i = 0; i < tree.size(); ++i) {
    auto node = read_node(tree[i], i, tree.size(), num_features);
    if (!node) return node.status();
    nodes.push_back(*node);
  }
  set_expected_values(nodes);
  return nodes;
}

}  // namespace

Result<PathAttributor> PathAttributor::build(const std::string& model_json, std::size_t num_features) {
  auto trees = models::read_xgboost_trees(model_json);
  if (!trees) return trees.status();
  PathAttributor pa;
  pa.num_features_ = num_features;
  for (const std::vector<models::XgbTreeNode>& xgb_tree : *trees) {
    auto tree = read_tree(xgb_tree, num_features);
    if (!tree) return tree.status();
    // All trees share nodes_, so a tree's child indices move by its offset.
    const std::int32_t offset = static_cast<std::int32_t>(pa.nodes_.size());
    for (const TreeNode& t : *tree) {
      Node node{};
      node.feature = t.feature;
      node.left = node.right = node.missing = -1;
      if (t.feature >= 0) {
        node.left = offset + t.left;
        node.right = offset + t.right;
        node.missing = offset + t.missing;
        node.threshold = t.threshold;
      }
      node.expected = static_cast<float>(t.expected);
      pa.nodes_.push_back(node);
    }
    pa.roots_.push_back(offset);
  }
  return pa;
}

void PathAttributor::contributions(const float* row, std::span<double> out) const {
  contributions_and_leaf_sum(row, out);
}

double PathAttributor::contributions_and_leaf_sum(const float* row, std::span<double> out) const {
  double leaves = 0;
  for (std::int32_t root : roots_) {
    const Node* node = &nodes_[root];
    out[num_features_] += node->expected;
    while (node->feature >= 0) {
      const float v = row[node->feature];
      const std::int32_t next = std::isnan(v) ? node->missing : (v < node->threshold ? node->left : node->right);
      const Node* child = &nodes_[next];
      out[node->feature] += double(child->expected) - double(node->expected);
      node = child;
    }
    leaves += node->expected;
  }
  return leaves;
}

}  // namespace reai::scoring
