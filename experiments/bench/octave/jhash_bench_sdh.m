% jhash bench driver (ours): SDH, the authors' SDH.m with their demo settings, on train.mat.
% Needs code_dir/sshbir = a copy of Eddie-Wang1120/single-modal-supervised-hashing-baseline-for-image-retrieval
% (its folder 'SSHBIR Toolkit': SDH/SDH.m, utils/RRC.m, utils/sqdist.m). Sets fit_seconds.
toolkit = fullfile(code_dir, 'sshbir', 'SSHBIR Toolkit');
addpath(fullfile(toolkit, 'SDH'), fullfile(toolkit, 'utils'));
load train.mat; n = size(X, 1); label = Y(:) + 1;
t0 = tic();
anchor = X(randsample(n, 1000), :); sigma = 0.4;
PhiX = [exp(-sqdist(X, anchor) / (2 * sigma * sigma)), ones(n, 1)];
gmap.lambda = 1; gmap.loss = 'L2'; Fmap.type = 'RBF'; Fmap.nu = 1e-5; Fmap.lambda = 1e-2;
Zinit = sign(randn(n, bits));
[~, F, H] = SDH(PhiX, label, Zinit, gmap, Fmap, [], 5, 0);
fit_seconds = toc(t0);
