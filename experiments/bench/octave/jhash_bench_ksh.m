% jhash bench driver (ours): KSH, the training loop of the authors' KSH_demo.m (Wei Liu; 300 random anchors,
% 2,000 labelled points) with their OptProjectionFast.m, on train.mat.
% Needs code_dir/sshbir = a copy of Eddie-Wang1120/single-modal-supervised-hashing-baseline-for-image-retrieval
% (its folder 'SSHBIR Toolkit/KSH' holds OptProjectionFast.m as in ColumbiaDVMM/Supervised-Hashing-with-Kernels).
% Sets fit_seconds.
addpath(fullfile(code_dir, 'sshbir', 'SSHBIR Toolkit', 'KSH'));
load train.mat; [n, d] = size(X); m = 300; trn = 2000; r = bits;
t0 = tic();
anchor = X(randperm(n, m), :); label_index = randperm(n, trn);
KTrain = max(sum(X .^ 2, 2) + sum(anchor .^ 2, 2)' - 2 * X * anchor', 0);   % squared distances
sigma = mean(mean(KTrain, 2));
KTrain = exp(-KTrain / (2 * sigma)); mvec = mean(KTrain); KTrain = KTrain - repmat(mvec, n, 1);
g = Y(label_index); S = r * (2 * (repmat(g(:), 1, trn) == repmat(g(:)', trn, 1)) - 1);
KK = KTrain(label_index', :); RM = KK' * KK; A1 = zeros(m, r);
for rr = 1:r
  if rr > 1, S = S - y * y'; end
  [U, V] = eig(KK' * S * KK, RM); [~, order] = sort(diag(V)', 'descend');
  A1(:, rr) = U(:, order(1)); A1(:, rr) = sqrt(trn / (A1(:, rr)' * RM * A1(:, rr))) * A1(:, rr);
  get_vec = OptProjectionFast(KK, S, A1(:, rr), 500);
  y = 2 * double(KK * A1(:, rr) > 0) - 1; y1 = 2 * double(KK * get_vec > 0) - 1;
  if y1' * S * y1 > y' * S * y, A1(:, rr) = get_vec; y = y1; end
end
fit_seconds = toc(t0);
