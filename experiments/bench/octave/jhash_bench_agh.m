% jhash bench driver (ours): one-layer AGH, the authors' OneLayerAGH_Train.m (Wei Liu; m = 300 anchors, s = 2,
% sigma estimated by their code), on train.mat. Their demo loads precomputed k-means anchors, so the anchors
% here are 10 Lloyd iterations from 300 random points (as jhash's fit: 10 iterations, k-means++ start), timed too.
% Needs code_dir/agh = a copy of ColumbiaDVMM/Anchor-Graph-Hashing (OneLayerAGH_Train.m, sqdist.m).
% Sets fit_seconds.
addpath(fullfile(code_dir, 'agh'));
load train.mat; n = size(X, 1); m = 300;
t0 = tic();
anchor = X(randperm(n, m), :); xx = sum(X .^ 2, 2);
for it = 1:10
  [~, a] = min(xx + sum(anchor .^ 2, 2)' - 2 * X * anchor', [], 2);
  counts = accumarray(a, 1, [m 1]); sums = zeros(m, size(X, 2));
  for j = 1:size(X, 2), sums(:, j) = accumarray(a, X(:, j), [m 1]); end
  keep = counts > 0; anchor(keep, :) = sums(keep, :) ./ counts(keep);
end
[B, W, sigma] = OneLayerAGH_Train(X, anchor, bits, 2, 0);
fit_seconds = toc(t0);
